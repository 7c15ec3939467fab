"""The cloud's service PKI: an offline root, an intermediate in OpenBao, certificates per use."""
