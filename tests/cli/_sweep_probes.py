"""The bad-input probes of issue 16, as data: every ``nas`` command, its files, its numeric
flags, its output paths and corrupted stored state.

A probe is a name, the command it exercises and a builder ``(ws, tmp) -> (argv, guard)``:
``ws`` is a :class:`Workspace` of valid inputs shared by the probes of one test module, ``tmp``
a fresh folder of the probe; ``guard`` is a path that must NOT exist after the command (for
the cases that used to be accepted silently and write a wrong result), or None.

Probes run in process (``tests/cli/test_bad_input_sweep.py``); each must end with exit code 2,
exactly one ``error: ...`` line on stderr and no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from nasforge.search_spaces import get_space

__all__ = ["PROBES", "Probe", "Workspace", "make_workspace"]

DEEP = 3000  # nesting depth of the deeply nested files (past Python's recursion limit)
SMALL_ROWS = 40  # rows of the corrupted benchmark tables


@dataclass(frozen=True)
class Workspace:
    """Valid inputs the probes corrupt one at a time."""

    root: Path
    csv: Path  # the generated NB201 table (a copy)
    arch: Path  # an elasticvit arch YAML
    nb201_arch: Path  # a nasbench201 arch YAML
    experiment: Path  # a valid tabular experiment YAML
    predictor: Path  # a saved (fitted) gbdt predictor folder
    run_dir: Path  # a finished tabular search run folder
    read_only: Path  # a folder nobody can write into (a read-only mount when running as root)


Builder = Callable[[Workspace, Path], tuple[list[str], Path | None]]


@dataclass(frozen=True)
class Probe:
    """One bad input."""

    command: str
    name: str
    build: Builder
    owner: str = ""  # another helper's area: the fix lands with the merge (xfail until then)
    expect: str = ""  # text the error line must hold (default: the flag of ``--flag=value``)

    @property
    def id(self) -> str:
        return f"{self.command}:{self.name}"

    @property
    def needle(self) -> str:
        """What the error line must name: the flag of a ``--flag=value`` probe (so a probe
        cannot pass on an unrelated, earlier error)."""
        if self.expect:
            return self.expect
        return self.name.split("=", 1)[0] if self.name.startswith("--") and "=" in self.name \
            else ""


def _read_only_dir(root: Path) -> Path:
    if os.geteuid() != 0:
        ro = root / "read_only"
        ro.mkdir()
        ro.chmod(0o555)
        return ro
    return Path("/sys/nasforge-probe")  # root writes anywhere but a read-only mount


def make_workspace(root: Path, nb201_table: Path, *, run_dir: Path, predictor: Path
                   ) -> Workspace:
    """Write the valid inputs into ``root`` (``nb201_table``: tests/nb201_table.py's)."""
    csv = root / "nb201.csv"
    shutil.copy(nb201_table, csv)
    arch = root / "arch.yaml"
    arch.write_text(get_space("elasticvit").min_arch().to_yaml())
    nb = root / "nb201_arch.yaml"
    nb.write_text(get_space("nasbench201").min_arch().to_yaml())
    exp = root / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "search_space": "nasbench201", "device": "pixel3_ms",
        "benchmark": {"path": str(csv), "metric": "cifar10_val"}, "strategy": "random",
        "budget": 4, "out": str(root / "exp_out")}))
    return Workspace(root, csv, arch, nb, exp, predictor, run_dir, _read_only_dir(root))


# ---- helpers that write a corrupted file ---------------------------------------------------
def _w(tmp: Path, name: str, text: str | bytes) -> Path:
    p = tmp / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _non_utf8(tmp: Path, name: str = "bad.yaml") -> Path:
    return _w(tmp, name, b"space: elasticvit\nresolution: \xff\xfe\x80\n")


def _deep_yaml(tmp: Path, name: str = "deep.yaml") -> Path:
    return _w(tmp, name, "[" * DEEP + "]" * DEEP)


def _deep_json(tmp: Path, name: str = "deep.json") -> Path:
    return _w(tmp, name, "[" * DEEP + "]" * DEEP)


def _dup_yaml(ws: Workspace, tmp: Path, name: str = "dup.yaml") -> Path:
    text = ws.arch.read_text()
    return _w(tmp, name, text + "resolution: 224\n")  # `resolution` twice


def _small_csv_lines(ws: Workspace) -> list[str]:
    """The table's header and first rows: a corrupted table fails its checks before any
    search runs, so the probes need not copy all 15,625 rows."""
    with ws.csv.open() as f:
        return [next(f).rstrip("\n") for _ in range(SMALL_ROWS + 1)]


def _csv_with(ws: Workspace, tmp: Path, column: str, value: str, row: int = 0) -> Path:
    lines = _small_csv_lines(ws)
    header = lines[0].split(",")
    col = header.index(column)
    # arch_str contains no commas, so a plain split is exact for this table
    fields = lines[1 + row].split(",")
    fields[col] = value
    lines[1 + row] = ",".join(fields)
    return _w(tmp, "table.csv", "\n".join(lines) + "\n")


def _csv_every(ws: Workspace, tmp: Path, column: str, value: str) -> Path:
    lines = _small_csv_lines(ws)
    col = lines[0].split(",").index(column)
    out = [lines[0]]
    for ln in lines[1:]:
        f = ln.split(",")
        f[col] = value
        out.append(",".join(f))
    return _w(tmp, "table.csv", "\n".join(out) + "\n")


def _csv_dup_row(ws: Workspace, tmp: Path, changed: bool) -> Path:
    lines = _small_csv_lines(ws)
    extra = lines[5].split(",")
    if changed:
        extra[2] = "99.9"  # same arch_str, another accuracy
    return _w(tmp, "table.csv", "\n".join([*lines, ",".join(extra)]) + "\n")


def _existing_file(tmp: Path) -> Path:
    return _w(tmp, "a_file", "not a folder\n")


def _dir(tmp: Path) -> Path:
    d = tmp / "a_dir"
    d.mkdir()
    return d


# ---- per-command probe tables ---------------------------------------------------------------
def _tab(ws: Workspace, tmp: Path, *extra: str, csv: Path | None = None, out: Path | None = None,
         device: str = "pixel3_ms", metric: str = "cifar10_val") -> list[str]:
    return ["search", "--space", "nasbench201", "--device", device, "--benchmark",
            str(csv or ws.csv), "--metric", metric, "--strategy", "random", "--budget", "4",
            "--out", str(out or tmp / "out"), *extra]


def _search_probes() -> list[Probe]:
    p: list[Probe] = []

    def add(name: str, build: Builder, owner: str = "", expect: str = "") -> None:
        p.append(Probe("search", name, build, owner, expect))

    for flag, val in [("--latency", "nan"), ("--latency", "inf"), ("--latency", "-5"),
                      ("--latency", "0"), ("--flops", "nan"), ("--flops", "-1"),
                      ("--flops", "inf"), ("--params", "-1"), ("--params", "nan"),
                      ("--seed", "-1"), ("--budget", "0"), ("--workers", "0"),
                      ("--budget", "-3")]:
        add(f"{flag}={val}", lambda ws, t, f=flag, v=val: (_tab(ws, t, f, v), t / "out"))
    for col, val in [("pixel3_ms", "-5"), ("pixel3_ms", "nan"), ("pixel3_ms", "inf"),
                     ("pixel3_ms", ""), ("pixel3_ms", "fast"), ("cifar10_val", "nan"),
                     ("cifar10_val", "inf"), ("cifar10_val", "-1"), ("cifar10_val", "250"),
                     ("cifar10_val", "abc")]:
        add(f"csv {col}={val or 'empty'}", lambda ws, t, c=col, v=val: (
            _tab(ws, t, csv=_csv_with(ws, t, c, v)), t / "out"), expect=col)
    add("csv every latency negative", lambda ws, t: (
        _tab(ws, t, "--latency", "5", csv=_csv_every(ws, t, "pixel3_ms", "-5")), t / "out"),
        expect="pixel3_ms")
    add("csv duplicate row", lambda ws, t: (
        _tab(ws, t, csv=_csv_dup_row(ws, t, changed=False)), t / "out"), expect="appears 2 times")
    add("csv duplicate arch, other value", lambda ws, t: (
        _tab(ws, t, csv=_csv_dup_row(ws, t, changed=True)), t / "out"), expect="appears 2 times")
    add("csv non-utf8", lambda ws, t: (
        _tab(ws, t, csv=_w(t, "t.csv", b"arch_str,cifar10_val,pixel3_ms\n\xff\xfe,1,2\n")),
        t / "out"))
    add("csv empty", lambda ws, t: (_tab(ws, t, csv=_w(t, "t.csv", "")), t / "out"))
    add("csv header only", lambda ws, t: (
        _tab(ws, t, csv=_w(t, "t.csv", "arch_str,cifar10_val,pixel3_ms\n")), t / "out"))
    add("csv is a directory", lambda ws, t: (_tab(ws, t, csv=_dir(t)), t / "out"))
    add("csv binary", lambda ws, t: (_tab(ws, t, csv=_w(t, "t.csv", bytes(range(256)) * 4)),
                                     t / "out"))
    add("csv ragged rows", lambda ws, t: (
        _tab(ws, t, csv=_w(t, "t.csv", "arch_str,cifar10_val,pixel3_ms\na,1\nb,2,3,4,5\n")),
        t / "out"))
    add("--out is an existing file", lambda ws, t: (_tab(ws, t, out=_existing_file(t)), None))
    add("--out under a file", lambda ws, t: (_tab(ws, t, out=_existing_file(t) / "x"), None))
    add("--out read-only", lambda ws, t: (_tab(ws, t, out=ws.read_only / "x"), None))
    add("--storage is a directory", lambda ws, t: (
        _tab(ws, t, "--storage", f"sqlite:///{_dir(t)}"), t / "out" / "best.yaml"),
        owner="i16-storage")
    add("--predictor missing", lambda ws, t: (
        ["search", "--space", "elasticvit", "--device", "pixel7", "--predictor",
         str(t / "nope"), "--budget", "4", "--out", str(t / "out")], t / "out"))
    add("--predictor is a file", lambda ws, t: (
        ["search", "--space", "nasbench201", "--device", "pixel7", "--predictor",
         str(_existing_file(t)), "--budget", "4", "--out", str(t / "out")], t / "out"))
    for name, mutate in _PREDICTOR_CORRUPTIONS.items():
        add(f"predictor {name}", lambda ws, t, m=mutate: (
            ["search", "--space", "elasticvit", "--device", "pixel7", "--predictor",
             str(_corrupt_predictor(ws, t, m)), "--budget", "4", "--out", str(t / "out")],
            t / "out"))
    add("--strategy-opt nan", lambda ws, t: (
        _tab(ws, t, "--strategy-opt", "population_size=.nan"), t / "out"), owner="i16-storage")
    return p


# predictor folders: predictor.json corruptions
def _pred_manifest(ws: Workspace) -> dict:
    return json.loads((ws.predictor / "predictor.json").read_text())


_PREDICTOR_CORRUPTIONS: dict[str, Callable[[Workspace, Path], None]] = {
    "manifest non-utf8": lambda ws, d: (d / "predictor.json").write_bytes(b"{\"a\": \"\xff\"}"),
    "manifest deep": lambda ws, d: (d / "predictor.json").write_text("[" * DEEP + "]" * DEEP),
    "manifest a list": lambda ws, d: (d / "predictor.json").write_text("[1, 2]"),
    "manifest duplicate key": lambda ws, d: (d / "predictor.json").write_text(
        (d / "predictor.json").read_text().replace('{', '{"predictor": "gbdt", ', 1)),
    "unknown predictor": lambda ws, d: (d / "predictor.json").write_text(json.dumps(
        {**_pred_manifest(ws), "predictor": "gbdtt"})),
    "config not a mapping": lambda ws, d: (d / "predictor.json").write_text(json.dumps(
        {**_pred_manifest(ws), "config": [1]})),
    "config unknown key": lambda ws, d: (d / "predictor.json").write_text(json.dumps(
        {**_pred_manifest(ws), "config": {"bogus": 1}})),
    "n_features missing": lambda ws, d: (d / "predictor.json").write_text(json.dumps(
        {k: v for k, v in _pred_manifest(ws).items() if k != "n_features"})),
    "n_features negative": lambda ws, d: (d / "predictor.json").write_text(json.dumps(
        {**_pred_manifest(ws), "n_features": -3})),
    "model file escapes folder": lambda ws, d: (d / "predictor.json").write_text(json.dumps(
        {**_pred_manifest(ws), "state": {"model_file": "../../../etc/passwd"}})),
    "model file absolute": lambda ws, d: (d / "predictor.json").write_text(json.dumps(
        {**_pred_manifest(ws), "state": {"model_file": "/etc/passwd"}})),
    "model file truncated": lambda ws, d: [
        (f.write_bytes(f.read_bytes()[:40])) for f in d.iterdir() if f.name != "predictor.json"],
    "model file missing": lambda ws, d: [
        f.unlink() for f in d.iterdir() if f.name != "predictor.json"],
}


def _corrupt_predictor(ws: Workspace, tmp: Path, mutate: Callable[[Workspace, Path], None]
                       ) -> Path:
    d = tmp / "pred"
    shutil.copytree(ws.predictor, d)
    mutate(ws, d)
    return d


def _run_probes() -> list[Probe]:
    p: list[Probe] = []

    def add(name: str, build: Builder, owner: str = "") -> None:
        p.append(Probe("run", name, build, owner))

    def exp(ws: Workspace, t: Path, **changes: object) -> Path:
        data = yaml.safe_load(ws.experiment.read_text())
        data["out"] = str(t / "out")
        data.update(changes)
        return _w(t, "exp.yaml", yaml.safe_dump(data))

    add("non-utf8", lambda ws, t: (["run", str(_non_utf8(t))], None))
    add("deep yaml", lambda ws, t: (["run", str(_deep_yaml(t))], None))
    add("duplicate key", lambda ws, t: (["run", str(_w(
        t, "e.yaml", ws.experiment.read_text() + "budget: 9\n"))], t / "exp_out"))
    add("a directory", lambda ws, t: (["run", str(_dir(t))], None))
    add("empty file", lambda ws, t: (["run", str(_w(t, "e.yaml", ""))], None))
    add("latency nan", lambda ws, t: (["run", str(exp(ws, t, constraints={
        "latency_ms": float("nan")}))], t / "out"))
    add("latency inf", lambda ws, t: (["run", str(exp(ws, t, constraints={
        "latency_ms": float("inf")}))], t / "out"))
    add("mflops -1", lambda ws, t: (["run", str(exp(ws, t, constraints={"mflops": -1}))],
                                    t / "out"))
    add("seed -1", lambda ws, t: (["run", str(exp(ws, t, seed=-1))], t / "out"))
    add("budget 10**30", lambda ws, t: (["run", str(exp(ws, t, budget=10 ** 30))], t / "out"))
    add("out is a file", lambda ws, t: (["run", str(exp(ws, t, out=str(_existing_file(t))))],
                                        None))
    add("out read-only", lambda ws, t: (["run", str(exp(ws, t, out=str(ws.read_only / "x")))],
                                        None))
    add("benchmark csv negative", lambda ws, t: (["run", str(exp(ws, t, benchmark={
        "path": str(_csv_with(ws, t, "pixel3_ms", "-5")), "metric": "cifar10_val"}))],
        t / "out"))
    add("benchmark path is a dir", lambda ws, t: (["run", str(exp(ws, t, benchmark={
        "path": str(_dir(t)), "metric": "cifar10_val"}))], t / "out"))
    add("name not a string", lambda ws, t: (["run", str(exp(ws, t, name=[1]))], t / "out"))
    add("accelerator unknown", lambda ws, t: (["run", str(exp(ws, t, accelerator="tpu"))],
                                              t / "out"))
    return p


def _arch_probes() -> list[Probe]:
    p: list[Probe] = []

    def add(cmd: str, name: str, build: Builder) -> None:
        p.append(Probe(cmd, name, build))

    for cmd in ("describe", "export"):
        extra = ["--to", "elasticvit-tuple"] if cmd == "export" else []
        c = f"arch {cmd}"
        add(c, "non-utf8", lambda ws, t, c=cmd, e=extra: (
            ["arch", c, str(_non_utf8(t)), *e], None))
        add(c, "deep yaml", lambda ws, t, c=cmd, e=extra: (
            ["arch", c, str(_deep_yaml(t)), *e], None))
        add(c, "deep json", lambda ws, t, c=cmd, e=extra: (
            ["arch", c, str(_deep_json(t)), *e], None))
        add(c, "duplicate key", lambda ws, t, c=cmd, e=extra: (
            ["arch", c, str(_dup_yaml(ws, t)), *e], None))
        add(c, "a directory", lambda ws, t, c=cmd, e=extra: (["arch", c, str(_dir(t)), *e], None))
        add(c, "empty", lambda ws, t, c=cmd, e=extra: (
            ["arch", c, str(_w(t, "a.yaml", "")), *e], None))
        add(c, "resolution nan", lambda ws, t, c=cmd, e=extra: (["arch", c, str(_w(
            t, "a.yaml", ws.arch.read_text().replace("resolution: 128", "resolution: .nan"))),
            *e], None))
        add(c, "resolution huge", lambda ws, t, c=cmd, e=extra: (["arch", c, str(_w(
            t, "a.yaml", ws.arch.read_text().replace("resolution: 128",
                                                     "resolution: 1e400"))), *e], None))
        add(c, "a scalar", lambda ws, t, c=cmd, e=extra: (
            ["arch", c, str(_w(t, "a.yaml", "42\n")), *e], None))
        add(c, "list of scalars", lambda ws, t, c=cmd, e=extra: (
            ["arch", c, str(_w(t, "a.yaml", "[1, 2]\n")), *e], None))
        add(c, "widths not a list", lambda ws, t, c=cmd, e=extra: (["arch", c, str(_w(
            t, "a.yaml", _replace_field(ws.arch, "widths", 7))), *e], None))
        add(c, "binary", lambda ws, t, c=cmd, e=extra: (
            ["arch", c, str(_w(t, "a.yaml", bytes(range(256)))), *e], None))
    # output paths of the writers
    for cmd, argv in (("arch sample", ["arch", "sample", "--space", "elasticvit"]),
                      ("arch import", ["arch", "import", "--from", "nb201", "NB201"]),
                      ("arch export", ["arch", "export", "ARCH", "--to", "elasticvit-tuple"])):
        for name, target in (("-o is a directory", lambda ws, t: _dir(t)),
                             ("-o under a file", lambda ws, t: _existing_file(t) / "a.yaml"),
                             ("-o read-only", lambda ws, t: ws.read_only / "a.yaml")):
            add(cmd, name, lambda ws, t, a=argv, tg=target: (
                [_sub(x, ws, t) for x in a] + ["-o", str(tg(ws, t))], None))
    add("arch sample", "--n=0", lambda ws, t: (["arch", "sample", "-s", "elasticvit", "--n", "0"],
                                               None))
    add("arch sample", "--n=-2", lambda ws, t: (["arch", "sample", "-s", "elasticvit", "-n", "-2"],
                                                None))
    add("arch sample", "--seed=-1", lambda ws, t: (
        ["arch", "sample", "-s", "elasticvit", "--seed", "-1", "-o", str(t / "a.yaml")],
        t / "a.yaml"))
    add("arch sample", "--n=10**12", lambda ws, t: (
        ["arch", "sample", "-s", "elasticvit", "--n", str(10 ** 12)], None))
    for fmt, bad in (("elasticvit-tuple", "[1, 2, 3]"), ("elasticvit-tuple", "[" * DEEP),
                     ("ofa", '{"ks": [3], "e": [3], "d": [2]}'),
                     ("ofa", "{\"a\": 1, \"a\": 2}"), ("nb201", "|nor_conv_9x9~0|+|"),
                     ("nb201", "")):
        add("arch import", f"{fmt} {bad[:16]}", lambda ws, t, f=fmt, b=bad: (
            ["arch", "import", "--from", f, str(_w(t, "in.txt", b))], None))
    add("arch import", "--resolution=-1", lambda ws, t: (
        ["arch", "import", "--from", "nb201", str(_nb201_text(t)), "--resolution", "-1"], None))
    add("arch import", "--resolution=0 (ofa)", lambda ws, t: (
        ["arch", "import", "--from", "ofa", str(_ofa_text(t)), "--resolution", "0"], None))
    add("arch import", "non-utf8", lambda ws, t: (
        ["arch", "import", "--from", "nb201", str(_non_utf8(t, "a.txt"))], None))
    add("arch import", "a directory", lambda ws, t: (
        ["arch", "import", "--from", "nb201", str(_dir(t))], None))
    return p


def _replace_field(path: Path, key: str, value: object) -> str:
    data = yaml.safe_load(path.read_text())
    data[key] = value
    return yaml.safe_dump(data)


def _nb201_text(tmp: Path) -> Path:
    return _w(tmp, "cells.txt", get_space("nasbench201").min_arch().to_arch_str() + "\n")


def _ofa_text(tmp: Path) -> Path:
    from nasforge.search_spaces._ofa_mbv3_io import arch_to_ofa_config

    return _w(tmp, "net.json", json.dumps(arch_to_ofa_config(get_space("ofa_mbv3").min_arch())))


def _sub(x: str, ws: Workspace, t: Path) -> str:
    if x == "NB201":
        return str(_nb201_text(t))
    if x == "ARCH":
        return str(ws.arch)
    return x


def _hw_probes() -> list[Probe]:
    p: list[Probe] = []

    def add(cmd: str, name: str, build: Builder) -> None:
        p.append(Probe(cmd, name, build))

    def imp(ws: Workspace, t: Path, fmt: str, path: Path, device: str = "probe-dev"
            ) -> list[str]:
        return ["hw", "import", str(path), "--format", fmt, "--device", device, "--space",
                "elasticvit"]

    key = _a_key()
    for name, text in (("negative", f"key,mean_ms,std_ms,count\n{key},-1,0,3\n"),
                       ("nan", f"key,mean_ms,std_ms,count\n{key},nan,0,3\n"),
                       ("inf", f"key,mean_ms,std_ms,count\n{key},inf,0,3\n"),
                       ("std -1", f"key,mean_ms,std_ms,count\n{key},1,-1,3\n"),
                       ("count -1", f"key,mean_ms,std_ms,count\n{key},1,0,-1\n"),
                       ("duplicate key", f"key,mean_ms,std_ms,count\n{key},1,0,3\n{key},2,0,3\n"),
                       ("empty", ""), ("header only", "key,mean_ms,std_ms,count\n"),
                       ("non-numeric", f"key,mean_ms,std_ms,count\n{key},fast,0,3\n")):
        add("hw import", f"csv {name}", lambda ws, t, x=text: (
            imp(ws, t, "csv", _w(t, "t.csv", x)), None))
    for name, text in (("negative", json.dumps({key: -1.0})), ("nan", f'{{"{key}": NaN}}'),
                       ("inf", f'{{"{key}": Infinity}}'), ("string", json.dumps({key: "x"})),
                       ("duplicate key", f'{{"{key}": 1.0, "{key}": 2.0}}'),
                       ("deep", "[" * DEEP + "]" * DEEP), ("a list", "[1, 2]"),
                       ("non-utf8", b'{"\xff": 1}'), ("empty object", "{}")):
        add("hw import", f"nnmeter {name}", lambda ws, t, x=text: (
            imp(ws, t, "nnmeter-hybrid", _w(t, "t.json", x)), None))
    for name, text in (("mean nan", f"{key}: {{count: 3, mean: .nan, std: 0}}\n"),
                       ("mean negative", f"{key}: {{count: 3, mean: -2, std: 0}}\n"),
                       ("duplicate key", f"{key}: {{count: 3, mean: 1, std: 0}}\n"
                                         f"{key}: {{count: 3, mean: 2, std: 0}}\n"),
                       ("deep", "[" * DEEP), ("non-utf8", b"a: \xff\n"),
                       ("count -5", f"{key}: {{count: -5, mean: 1, std: 0}}\n")):
        add("hw import", f"ofa-yaml {name}", lambda ws, t, x=text: (
            imp(ws, t, "ofa-yaml", _w(t, "t.yaml", x)), None))
    add("hw import", "a directory", lambda ws, t: (imp(ws, t, "csv", _dir(t)), None))
    add("hw import", "device name escapes", lambda ws, t: (
        imp(ws, t, "csv", _w(t, "t.csv", f"key,mean_ms,std_ms,count\n{key},1,0,3\n"),
            device="../x"), None))
    add("hw import", "unknown format", lambda ws, t: (imp(ws, t, "xls", ws.csv), None))
    # hw predict: arch files
    for name, mk in (("non-utf8", lambda ws, t: _non_utf8(t)),
                     ("deep yaml", lambda ws, t: _deep_yaml(t)),
                     ("duplicate key", lambda ws, t: _dup_yaml(ws, t)),
                     ("a directory", lambda ws, t: _dir(t))):
        add("hw predict", name, lambda ws, t, m=mk: (
            ["hw", "predict", str(m(ws, t)), "--device", "pixel7"], None))
    # hw validate: numbers and outputs (fail before measuring anything)
    for flag, val in (("--n", "0"), ("--n", "-1"), ("--passes", "0"), ("--repeats", "-1"),
                      ("--threads", "0"), ("--jobs", "0"), ("--seed", "-1"),
                      ("--clock", "sundial")):
        add("hw validate", f"{flag}={val}", lambda ws, t, f=flag, v=val: (
            ["hw", "validate", "--space", "elasticvit", f, v, "--out", str(t / "v")],
            t / "v" / "validate.json"))
    for name, target in (("--out is a file", lambda ws, t: _existing_file(t)),
                         ("--out read-only", lambda ws, t: ws.read_only / "v")):
        add("hw validate", name, lambda ws, t, tg=target: (
            ["hw", "validate", "--space", "elasticvit", "--out", str(tg(ws, t))], None))
    # profile: numbers (fail before measuring anything)
    for flag, val in (("--threads", "0"), ("--budget", "0"), ("--budget", "-5"),
                      ("--seed-blocks", "-1"), ("--batch", "0"), ("--time-budget", "-1"),
                      ("--time-budget", "nan"), ("--time-budget", "inf"), ("--networks", "-1"),
                      ("--repeats", "0"), ("--n-archs", "0"), ("--seed", "-1"),
                      ("--jobs", "0"), ("--cpu", "-1"), ("--clock", "sundial"),
                      ("--backend", "abacus")):
        add("profile", f"{flag}={val}", lambda ws, t, f=flag, v=val: (
            ["profile", "--space", "elasticvit", f, v], None))
    return p


def _a_key() -> str:
    from nasforge.hardware_models import get_device

    model = get_device("pixel6")
    return str(next(iter(model.keys(get_space("elasticvit").min_arch()))))  # type: ignore[attr-defined]


def _device_folder_probes() -> list[Probe]:
    """Corrupted stored state: an imported device's folder in the cache."""
    p: list[Probe] = []
    corruptions: dict[str, Callable[[Path], None]] = {
        "profile non-utf8": lambda d: (d / "profile.json").write_bytes(b'{"name": "\xff"}'),
        "profile deep": lambda d: (d / "profile.json").write_text("[" * DEEP + "]" * DEEP),
        "profile a list": lambda d: (d / "profile.json").write_text("[]"),
        "profile duplicate key": lambda d: (d / "profile.json").write_text(
            (d / "profile.json").read_text().replace("{", '{"name": "x", ', 1)),
        "profile table escapes": lambda d: _edit_json(d / "profile.json", table="../../../x.csv"),
        "profile table absolute": lambda d: _edit_json(d / "profile.json", table="/etc/passwd"),
        "profile analytic garbage": lambda d: _edit_json(d / "profile.json", analytic=[1, 2]),
        "profile name not a string": lambda d: _edit_json(d / "profile.json", name=5),
        "profile spaces a string": lambda d: _edit_json(d / "profile.json", spaces=7),
        "table truncated": lambda d: (d / "table.csv").write_text("key,mean_ms\n"),
        "table negative": lambda d: (d / "table.csv").write_text(
            (d / "table.csv").read_text().splitlines()[0] + "\n"
            + _neg_row((d / "table.csv").read_text().splitlines()[1]) + "\n"),
        "table missing": lambda d: (d / "table.csv").unlink(),
        "table non-utf8": lambda d: (d / "table.csv").write_bytes(b"key,mean_ms\n\xff,1\n"),
    }
    for name, mutate in corruptions.items():
        def build(ws: Workspace, t: Path, m: Callable[[Path], None] = mutate
                  ) -> tuple[list[str], Path | None]:
            folder = _imported_device(ws, t)
            m(folder)
            return ["hw", "predict", str(ws.arch), "--device", "probe-dev"], None
        p.append(Probe("device folder", name, build))
    return p


def _neg_row(row: str) -> str:
    f = row.split(",")
    f[1] = "-3"
    return ",".join(f)


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _imported_device(ws: Workspace, tmp: Path) -> Path:
    """Import a one-entry table as device ``probe-dev`` into this test's cache."""
    from nasforge._paths import devices_cache_dir
    from nasforge.hardware_models import import_table

    key = _a_key()
    import_table(_w(tmp, "ok.csv", f"key,mean_ms,std_ms,count\n{key},1.5,0.1,3\n"), "csv",
                 "probe-dev", "elasticvit")
    return devices_cache_dir() / "probe-dev"


def _export_probes() -> list[Probe]:
    p: list[Probe] = []

    def add(name: str, build: Builder, owner: str = "") -> None:
        p.append(Probe("export", name, build, owner))

    def ex(ws: Workspace, t: Path, *extra: str, arch: Path | None = None) -> list[str]:
        return ["export", str(arch or ws.arch), "--format", "safetensors", "--out",
                str(t / "exp"), "--runs", "1", *extra]

    for flag, val in (("--calib-batches", "-1"), ("--input-size", "0"), ("--input-size", "-8"),
                      ("--num-classes", "0"), ("--top1", "nan"), ("--top1", "-5"),
                      ("--top1", "101"), ("--runs", "0"), ("--threads", "0"),
                      ("--opset", "5"), ("--tolerance", "-1"), ("--tolerance", "nan"),
                      ("--rtol", "nan"), ("--rtol", "-1"), ("--input-size", "100000")):
        add(f"{flag}={val}", lambda ws, t, f=flag, v=val: (ex(ws, t, f, v), t / "exp"))
    for name, mk in (("non-utf8", lambda ws, t: _non_utf8(t)),
                     ("deep yaml", lambda ws, t: _deep_yaml(t)),
                     ("duplicate key", lambda ws, t: _dup_yaml(ws, t)),
                     ("a directory", lambda ws, t: _dir(t)),
                     ("config input_size nan", lambda ws, t: _w(t, "c.yaml", yaml.safe_dump({
                         "arch": yaml.safe_load(ws.arch.read_text()),
                         "input_size": float("nan")}))),
                     ("config num_classes -3", lambda ws, t: _w(t, "c.yaml", yaml.safe_dump({
                         "arch": yaml.safe_load(ws.arch.read_text()),
                         "num_classes": -3})))):
        add(name, lambda ws, t, m=mk: (ex(ws, t, arch=m(ws, t)), t / "exp"))
    add("--out is a file", lambda ws, t: (
        ["export", str(ws.arch), "-f", "safetensors", "--out", str(_existing_file(t))],
        None))
    add("--out read-only", lambda ws, t: (
        ["export", str(ws.arch), "-f", "safetensors", "--out", str(ws.read_only / "e")],
        None))
    add("--name escapes --out", lambda ws, t: (ex(ws, t, "--name", "../../escaped"),
                                               t / "escaped.safetensors"))
    add("--name absolute", lambda ws, t: (ex(ws, t, "--name", str(t / "abs")),
                                          t / "abs.safetensors"))
    add("--supernet is a directory without checkpoint", lambda ws, t: (
        ex(ws, t, "--supernet", str(_dir(t))), t / "exp"), owner="i16-train")
    add("--supernet corrupt", lambda ws, t: (
        ex(ws, t, "--supernet", str(_w(t, "x.ckpt", b"\x00" * 64))), t / "exp"),
        owner="i16-train")
    return p


def _report_probes() -> list[Probe]:
    p: list[Probe] = []

    def add(name: str, build: Builder, owner: str = "") -> None:
        p.append(Probe("report", name, build, owner))

    def run_copy(ws: Workspace, t: Path, mutate: Callable[[Path], None]) -> Path:
        d = t / "run"
        shutil.copytree(ws.run_dir, d)
        mutate(d)
        return d

    add("--out is a directory", lambda ws, t: (
        ["report", str(ws.run_dir), "--out", str(_dir(t))], None))
    add("--out under a file", lambda ws, t: (
        ["report", str(ws.run_dir), "--out", str(_existing_file(t) / "r.png")], None))
    add("--out read-only", lambda ws, t: (
        ["report", str(ws.run_dir), "--out", str(ws.read_only / "r.png")], None))
    add("--out not a png", lambda ws, t: (
        ["report", str(ws.run_dir), "--out", str(t / "r.txt")], t / "r.txt"))
    for name, mutate in (
            ("run.json non-utf8", lambda d: (d / "run.json").write_bytes(b'{"a": "\xff"}')),
            ("run.json deep", lambda d: (d / "run.json").write_text("[" * DEEP + "]" * DEEP)),
            ("run.json a list", lambda d: (d / "run.json").write_text("[]")),
            ("run.json truncated", lambda d: (d / "run.json").write_text(
                (d / "run.json").read_text()[:50])),
            ("run.json missing", lambda d: (d / "run.json").unlink()),
            ("candidates.csv missing", lambda d: (d / "candidates.csv").unlink()),
            ("candidates.csv garbage", lambda d: (d / "candidates.csv").write_bytes(
                bytes(range(256)))),
            ("pareto.csv empty", lambda d: (d / "pareto.csv").write_text(""))):
        add(name, lambda ws, t, m=mutate: (
            ["report", str(run_copy(ws, t, m)), "--out", str(t / "r.png")], t / "r.png"),
            owner="report")
    add("run folder is a file", lambda ws, t: (
        ["report", str(_existing_file(t)), "--out", str(t / "r.png")], t / "r.png"))
    return p


def _sweep_probes() -> list[Probe]:
    p: list[Probe] = []

    def add(name: str, build: Builder) -> None:
        p.append(Probe("sweep", name, build))

    def sw(ws: Workspace, t: Path, **changes: object) -> Path:
        data: dict[str, object] = {
            "base": {"search_space": "nasbench201",
                     "benchmark": {"path": str(ws.csv), "metric": "cifar10_val"},
                     "budget": 4, "device": "pixel3_ms"},
            "grid": {"seed": [0, 1]}, "out": str(t / "sw")}
        data.update(changes)
        return _w(t, "sweep.yaml", yaml.safe_dump(data))

    add("non-utf8", lambda ws, t: (["sweep", str(_non_utf8(t))], None))
    add("deep yaml", lambda ws, t: (["sweep", str(_deep_yaml(t))], None))
    add("duplicate key", lambda ws, t: (["sweep", str(_w(
        t, "s.yaml", sw(ws, t).read_text() + "out: elsewhere\n"))], None))
    add("a directory", lambda ws, t: (["sweep", str(_dir(t))], None))
    add("grid seed -1", lambda ws, t: (["sweep", str(sw(ws, t, grid={"seed": [0, -1]}))],
                                       t / "sw"))
    add("grid latency nan", lambda ws, t: (["sweep", str(sw(ws, t, grid={
        "constraints.latency_ms": [5, float("nan")]}))], t / "sw"))
    add("grid latency -5", lambda ws, t: (["sweep", str(sw(ws, t, grid={
        "constraints.latency_ms": [-5]}))], t / "sw"))
    add("max_failures -1", lambda ws, t: (["sweep", str(sw(ws, t, max_failures=-1))], t / "sw"))
    add("num_samples 0", lambda ws, t: (["sweep", str(sw(ws, t, num_samples=0, grid={},
                                                          random={"seed": {"randint": [0, 9]}}
                                                          ))], t / "sw"))
    add("random uniform nan", lambda ws, t: (["sweep", str(sw(ws, t, grid={}, num_samples=2,
        random={"constraints.latency_ms": {"uniform": [float("nan"), 5]}}))], t / "sw"))
    add("resources cpu -1", lambda ws, t: (["sweep", str(sw(ws, t, resources_per_trial={
        "cpu": -1}))], t / "sw"))
    add("resources cpu nan", lambda ws, t: (["sweep", str(sw(ws, t, resources_per_trial={
        "cpu": float("nan")}))], t / "sw"))
    add("out is a file", lambda ws, t: (["sweep", str(sw(ws, t, out=str(_existing_file(t))))],
                                        None))
    add("out read-only", lambda ws, t: (["sweep", str(sw(ws, t, out=str(ws.read_only / "s")))],
                                        None))
    add("benchmark csv nan", lambda ws, t: (["sweep", str(sw(ws, t, base={
        "search_space": "nasbench201", "budget": 4, "device": "pixel3_ms",
        "benchmark": {"path": str(_csv_with(ws, t, "pixel3_ms", "nan")),
                      "metric": "cifar10_val"}}))], t / "sw" / "sweep.csv"))
    add("--max-concurrent=0", lambda ws, t: (["sweep", str(sw(ws, t)), "--max-concurrent", "0"],
                                             t / "sw"))
    return p


def _predictor_probes() -> list[Probe]:
    p: list[Probe] = []

    def add(name: str, build: Builder) -> None:
        p.append(Probe("predictor import", name, build))

    add("missing file", lambda ws, t: (
        ["predictor", "import", str(t / "no.pth"), "--from", "ofa", "--out", str(t / "p")],
        t / "p"))
    add("garbage file", lambda ws, t: (
        ["predictor", "import", str(_w(t, "a.pth", bytes(range(256)))), "--from", "ofa",
         "--out", str(t / "p")], t / "p"))
    add("a directory", lambda ws, t: (
        ["predictor", "import", str(_dir(t)), "--from", "ofa", "--out", str(t / "p")], t / "p"))
    add("--out is a file", lambda ws, t: (
        ["predictor", "import", str(_w(t, "a.pth", b"x")), "--from", "ofa", "--out",
         str(_existing_file(t))], None))
    add("--out read-only", lambda ws, t: (
        ["predictor", "import", str(_w(t, "a.pth", b"x")), "--from", "ofa", "--out",
         str(ws.read_only / "p")], None))
    add("unknown space", lambda ws, t: (
        ["predictor", "import", str(_w(t, "a.pth", b"x")), "--from", "ofa", "--out",
         str(t / "p"), "--space", "ofa_mbv4"], t / "p"))
    return p


def _train_probes() -> list[Probe]:
    """`nas train` / `nas eval` numeric flags: the training helper's area (xfail until merged)."""
    p: list[Probe] = []
    for flag, val in (("--lr", "nan"), ("--lr", "-1"), ("--ema", "2"), ("--ema", "nan"),
                      ("--seed", "-1"), ("--steps", "-1"), ("--batch-size", "0"),
                      ("--resolution-scale", "0"), ("--resolution-scale", "nan"),
                      ("--input-size", "0"), ("--workers", "-1"), ("--epochs", "-1")):
        p.append(Probe("train", f"{flag}={val}", lambda ws, t, f=flag, v=val: (
            ["train", "--space", "nasbench201", "--data", "synthetic", "--steps", "1",
             "--no-eval", "--no-progress", "--out", str(t / "sn"), f, v], t / "sn" / "last.ckpt"),
            owner="i16-train"))
    for name, mk in (("--config non-utf8", lambda ws, t: _non_utf8(t)),
                     ("--config deep yaml", lambda ws, t: _deep_yaml(t)),
                     ("--config duplicate key", lambda ws, t: _w(
                         t, "r.yaml", "train:\n  lr: 0.1\n  lr: 0.2\n"))):
        p.append(Probe("train", name, lambda ws, t, m=mk: (
            ["train", "--config", str(m(ws, t)), "--print-config", "--out", str(t / "sn")],
            t / "sn"),
            owner="i16-train"))
    for name, target in (("--out is a file", lambda ws, t: _existing_file(t)),
                         ("--out read-only", lambda ws, t: ws.read_only / "sn")):
        p.append(Probe("train", name, lambda ws, t, tg=target: (
            ["train", "--space", "nasbench201", "--data", "synthetic", "--steps", "1",
             "--no-eval", "--no-progress", "--out", str(tg(ws, t))], None), owner="i16-train"))
    for flag, val in (("--recal-batches", "-1"), ("--resolution", "0"), ("--workers", "-1")):
        p.append(Probe("eval", f"{flag}={val}", lambda ws, t, f=flag, v=val: (
            ["eval", "--supernet", str(t / "none.ckpt"), "--arch", str(ws.nb201_arch), f, v],
            None), owner="i16-train"))
    return p


PROBES: list[Probe] = [
    *_search_probes(), *_run_probes(), *_arch_probes(), *_hw_probes(),
    *_device_folder_probes(), *_export_probes(), *_report_probes(), *_sweep_probes(),
    *_predictor_probes(), *_train_probes(),
]
