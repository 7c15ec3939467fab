"""The Pulumi program's entry point: read the stack's settings, build the components.

Kept thin on purpose; the components grow as the pieces of the cloud land.
"""

import pulumi

from govcloud.spec import load_spec

config = pulumi.Config("govcloud")
spec = load_spec(config.get("spec"))
pulumi.export("spec", spec.name)
