"""`govcloud app deploy`: a department team's app spec, validated against its tenant, applied
into the department's namespace with the department's own credentials."""
