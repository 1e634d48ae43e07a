"""``nas predictor import``: bring the field's pretrained accuracy predictors into nasforge."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nasforge.cli._common import console
from nasforge.errors import InvalidInputError
from nasforge.validation import check_output_dir

__all__ = ["register"]

predictor_app = typer.Typer(
    name="predictor",
    help="Accuracy predictors: import pretrained ones (OFA's ImageNet MLP for ofa_mbv3 w1.2).",
    no_args_is_help=True,
)

_SOURCES = ("ofa",)


def predictor_import(
    file: Path = typer.Argument(..., help="The predictor file (OFA: acc_predictor.pth)."),
    source: str = typer.Option(..., "--from", help="Where the file comes from: ofa."),
    out: Path = typer.Option(..., "--out", help="Directory to write the nasforge predictor to."),
    space: str = typer.Option("ofa_mbv3_w12", "--space",
                              help="Space whose encoding it reads (ofa_mbv3_w12 or ofa_mbv3)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Import a pretrained accuracy predictor as a nasforge predictor directory.

    The file is read with torch.load(weights_only=True) (no pickled code runs) and saved as
    safetensors + JSON; then `nas search --space ofa_mbv3_w12 --predictor DIR` uses it.
    """
    from nasforge.predictors import import_ofa_predictor

    if source not in _SOURCES:
        raise InvalidInputError(
            f"--from {source!r} is not a known predictor source; known: {', '.join(_SOURCES)}"
        )
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        raise InvalidInputError(f"predictor file {file} {what}; give the file (OFA: "
                                "acc_predictor.pth)")
    check_output_dir(out, "--out")
    path = import_ofa_predictor(file, out, space=space)
    if json_out:
        console.print_json(json.dumps({"predictor": str(path), "source": source,
                                       "file": str(file), "space": space}))
        return
    console.print(f"imported OFA's accuracy predictor ({file}) as [bold]{path}[/bold]; use it "
                  f"with `nas search --space {space} --predictor {path}`")


def register(app: typer.Typer) -> None:
    """Add the ``predictor`` group to the ``nas`` app."""
    predictor_app.command("import")(predictor_import)
    app.add_typer(predictor_app, name="predictor")
