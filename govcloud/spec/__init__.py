"""The spec: the single description of the cloud every other part reads."""

from govcloud.spec.load import default_spec_path, load_spec, parse
from govcloud.spec.model import Level, Spec

__all__ = ["Level", "Spec", "default_spec_path", "load_spec", "parse"]
