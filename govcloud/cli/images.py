"""`govcloud images`: OCI images from local files, pushed to the cloud's registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from govcloud.cli.common import JsonOpt, console, err_console, print_json, read_spec
from govcloud.errors import InputError

app = typer.Typer(
    help="OCI images made from local files (no internet), pushed to the cloud's registry under "
    "the department's prefix (<registry>/<dept>/<app>:<tag>), where the nodes pull them.",
    no_args_is_help=True,
)

DefinitionArg = Annotated[
    Path, typer.Argument(help="The image definition (image.yaml: name, tag, files, entrypoint).")
]


@app.command()
def build(definition: DefinitionArg, json: JsonOpt = False) -> None:
    """Build the image and print its digest; sends nothing (the same files give the same
    digest)."""
    from clusters.images.definition import build_image

    d, image = build_image(definition, progress=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    out = {"name": d.name, "tag": d.tag, "digest": image.digest,
           "bytes": sum(len(b.data) for b in image.blobs())}  # fmt: skip
    if json:
        print_json(out)
    else:
        console.print(f"{d.name}:{d.tag} {image.digest} ({out['bytes']} bytes)")


@app.command()
def push(
    definition: DefinitionArg,
    spec: Annotated[
        Path | None, typer.Option("--spec", help="The cloud's spec (default: the lab's).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Build the image and push it to the cloud's registry; blobs the registry holds are not
    sent again. Prints the reference to put in the app spec."""
    from clusters.cloud.apply import registry_client
    from clusters.cloud.plan import make_cluster_plan
    from clusters.images.definition import build_image, load_definition
    from infra.plan import make_plan

    d, _ = load_definition(definition)
    s = read_spec(spec)
    if s.department(d.department) is None and d.department != "platform":
        raise InputError(
            f"{definition}: name: {d.name!r} must start with a department code of the spec "
            f"(its tenant's registry prefix), got {d.department!r}"
        )
    cp = make_cluster_plan(s, make_plan(s).hosts)
    if cp is None:
        raise InputError("the spec plans no cluster, so no registry to push to")
    _, image = build_image(definition, progress=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    sent = registry_client(cp).push(d.name, d.tag, image)
    ref = f"{cp.registry}/{d.name}:{d.tag}"
    if json:
        print_json({"image": ref, "digest": image.digest, "blobs_sent": sent})
    else:
        console.print(f"{ref} {image.digest} ({sent} new blobs)")
