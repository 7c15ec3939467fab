"""Audit for security officers: status of the audit devices, who-did-what reports, verify."""
