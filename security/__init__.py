"""Identity as code (OpenBao), bastion access, audit for security officers, compliance suites."""
