"""OpenBao: the client wrapper (:mod:`.client`) and the cluster on the identity hosts
(:mod:`.cluster`)."""
