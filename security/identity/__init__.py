"""Identity as code on OpenBao: the plan from the spec, its application, logins."""
