"""`facetrace engine ...`: pin an operator's own ONNX face model in the workspace, show it, reset it."""

from __future__ import annotations

import json

import click

from cli.common import EXIT_CODES, echo, echo_lines, translate_errors, workspace_options


@click.group("engine", epilog=EXIT_CODES)
def engine_group():
    """The workspace's face model: the built-in one (dlib's ResNet), or an ONNX model of your own.

    A pinned model is used by every command of the workspace (scan, enroll, match, calibrate, serve);
    its file's SHA-256 is checked each time it is loaded. Until `facetrace calibrate` has measured
    a policy for it on a labelled folder, its faces earn no same-person finding (docs/engines.md).

    \b
    Examples:
      facetrace engine set /models/arcface_r100.onnx --alignment arcface --mean 127.5 --std 127.5
      facetrace calibrate ./reference-people/
      facetrace engine show
      facetrace engine export-dlib dlib_resnet.onnx
    """


@engine_group.command("set")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--label",
    help="A short name for the model (letters, digits, - _ .), stored with every encoding (default: the file's name).",
)
@click.option(
    "--alignment",
    type=click.Choice(["arcface", "dlib-150"]),
    default="arcface",
    show_default=True,
    help="The crop the model was trained on: the ArcFace 5-point template at the model's input size, "
    "or dlib's 150x150 chip.",
)
@click.option("--channels", type=click.Choice(["rgb", "bgr"]), default="rgb", show_default=True)
@click.option(
    "--mean",
    default="127.5",
    show_default=True,
    metavar="M or R,G,B",
    help="Subtracted from the 0-255 pixels, per channel (in --channels order).",
)
@click.option("--std", default="128", show_default=True, metavar="S or R,G,B", help="Then divided by, per channel.")
@click.option(
    "--l2/--no-l2",
    default=True,
    show_default=True,
    help="L2-normalise the embedding (cosine models); --no-l2 for models compared by Euclidean distance.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was pinned as JSON.")
@workspace_options
@translate_errors
def set_command(model, label, alignment, channels, mean, std, l2, as_json, workspace, db_url):
    """Pin MODEL (an ONNX file) as this workspace's face model.

    The model takes one float32 batch of square crops ([N, 3, S, S] or [N, S, S, 3]) and returns one
    embedding per face. It is checked, run once on a blank crop, and its path, SHA-256 and crop are
    written to WORKSPACE/engine/engine.json; the file itself is not copied. Only a workspace with no
    enrolled templates and no scans can change its model: encodings of two models cannot be compared.
    """
    from scanner.actor import default_actor
    from scanner.errors import UsageError
    from scanner.pipeline import open_store, pin_model

    store, root = open_store(workspace, db_url)
    try:
        means = tuple(float(v) for v in mean.split(","))
        stds = tuple(float(v) for v in std.split(","))
    except ValueError:
        raise UsageError("--mean and --std take a number or three comma-separated numbers") from None
    spec = pin_model(
        store,
        root,
        model,
        default_actor(),
        label=label,
        alignment=alignment,
        channels=channels,
        mean=means,
        std=stds,
        l2=l2,
    )
    if as_json:
        echo_lines(json.dumps(spec.as_record(), indent=2).split("\n"))
        return
    echo(f"Pinned {spec.path} as {spec.embedder}")
    echo(f"  SHA-256     {spec.sha256}")
    echo(
        f"  input       {spec.alignment} crop, {spec.size}x{spec.size} {spec.channels.upper()} "
        f"({spec.layout.upper()}), minus {_triple(spec.mean)}, divided by {_triple(spec.std)}"
    )
    echo(f"  output      {spec.dim} values{', L2-normalised' if spec.l2 else ''}")
    echo(
        "Next: `facetrace calibrate FOLDER` on labelled photos of the people this workspace serves; until then "
        "faces earn no same-person finding (only copies are found)."
    )


@engine_group.command("show")
@click.option("--json", "as_json", is_flag=True)
@workspace_options
@translate_errors
def show_command(as_json, workspace, db_url):
    """Show the workspace's face model and the policy calibrated for it."""
    from scanner.fingerprints import modelfile
    from scanner.matching import calibration, policy
    from scanner.pipeline import workspace_root

    root = workspace_root(workspace)
    spec = modelfile.pinned(root)
    scale = calibration.model_policy(root, spec) if spec is not None else None
    if as_json:
        echo_lines(
            json.dumps(
                {
                    "model": None if spec is None else spec.as_record(),
                    "policy": policy.POLICY_VERSION if spec is None else (scale.version if scale else None),
                },
                indent=2,
            ).split("\n")
        )
        return
    if spec is None:
        echo(f"Built-in engine: dlib's ResNet (face_recognition), policy {policy.POLICY_VERSION}.")
        return
    echo(f"{spec.embedder}: {spec.path}")
    echo(f"  SHA-256     {spec.sha256}")
    echo(
        f"  input       {spec.alignment} crop {spec.size}x{spec.size} {spec.channels.upper()}, "
        f"output {spec.dim} values{', L2-normalised' if spec.l2 else ''}"
    )
    if scale is None:
        echo("  policy      none calibrated: faces earn no same-person finding (run facetrace calibrate FOLDER)")
    else:
        echo(f"  policy      {scale.version}")
        marks = ", ".join(f"{t} at {m:.4f}" for t, m in _thresholds(scale))
        echo(f"  scale       the policy's distances (dlib's scale) in the model's own: {marks}")


@engine_group.command("reset")
@workspace_options
@translate_errors
def reset_command(workspace, db_url):
    """Go back to the built-in engine (only in a workspace with no templates and no scans)."""
    from scanner.actor import default_actor
    from scanner.pipeline import open_store, unpin_model

    store, root = open_store(workspace, db_url)
    spec = unpin_model(store, root, default_actor())
    if spec is None:
        echo("This workspace already uses the built-in engine.")
        return
    echo(f"Unpinned {spec.embedder} ({spec.sha256[:12]}...): the workspace uses the built-in engine.")


@engine_group.command("export-dlib")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@translate_errors
def export_dlib_command(out):
    """Write the built-in network (dlib's ResNet) as an ONNX file OUT.

    The reference model file: pinned with `--alignment dlib-150 --mean 0 --std 1 --no-l2`, it gives
    the built-in engine's encodings (within 1e-4) and, once calibrated, its findings.
    """
    from scanner.fingerprints import modelfile

    sha = modelfile.export_dlib(out)
    echo(f"Wrote {out} (SHA-256 {sha})")
    echo(f"  facetrace engine set {out} --label dlib-resnet-export --alignment dlib-150 --mean 0 --std 1 --no-l2")


def _triple(values) -> str:
    return str(values[0]) if len(set(values)) == 1 else ",".join(str(v) for v in values)


def _thresholds(scale) -> list[tuple[float, float]]:
    """The model's distances where the scale reaches the policy's main limits."""
    import numpy as np

    from scanner.matching import policy

    limits = (
        policy.NEAR_COPY_FACE_MAX,
        policy.CROWDED_ABS_MAX,
        policy.FACE_PROBABLE_MAX,
        policy.GROUP_MEMBER_MAX,
        policy.FACE_POSSIBLE_MAX,
    )
    return [(t, float(np.interp(t, scale.reference, scale.model))) for t in limits]
