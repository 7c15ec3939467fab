"""The external tools govcloud drives, and how to find and run them.

- :mod:`.versions`: the one record of tool versions (``toolchain/versions.env``).
- :mod:`.tools`: locating a tool in ``$GOVCLOUD_CACHE/bin`` (filled by ``make tools``) or on PATH.
- :mod:`.pki`: a self-made CA and the certificates a local control plane needs.
- :mod:`.k8s`: a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)
  on loopback.
- :mod:`.pulumi`: the local Pulumi file backend with a generated passphrase.
"""
