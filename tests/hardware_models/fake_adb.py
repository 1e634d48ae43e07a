"""A stand-in ``adb`` for tests: a phone whose storage is a local folder and whose
``benchmark_model`` runs the pushed ``.tflite`` locally with LiteRT.

Placed first on ``PATH`` (as an executable named ``adb``), it answers the calls nasforge's adb
backend makes -- ``devices``, ``-s SERIAL push SRC DST``, ``-s SERIAL shell CMD`` with ``ls``,
``mkdir -p`` and ``[taskset MASK] BINARY --graph=... --num_threads=N --warmup_runs=W
--num_runs=R ...`` -- and prints what the real tools print, ``benchmark_model``'s timing lines
included, so the real protocol and parsing code run. A binary named ``executor_runner``
(ExecuTorch, ``--model_path=... --num_executions=N --cpu_threads=T``) runs the pushed ``.pte``
locally with ``executorch.runtime`` and prints that tool's log lines. Environment:

* ``FAKE_ADB_ROOT``: the phone's file system (``/data/local/tmp/x`` is ``$FAKE_ADB_ROOT/data/
  local/tmp/x``); ``benchmark_model`` is "installed" when that file exists there;
* ``FAKE_ADB_SERIALS``: comma-separated serials of attached phones (empty: none).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from pathlib import Path


def _local(root: Path, remote: str) -> Path:
    return root / remote.lstrip("/")


def _benchmark(root: Path, argv: list[str]) -> int:
    binary = argv[0]
    if not _local(root, binary).is_file():
        print(f"/system/bin/sh: {binary}: inaccessible or not found", file=sys.stderr)
        return 127
    opts = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
    graph = opts.get("graph", "")
    threads = int(opts.get("num_threads", "1"))
    warm, runs = int(opts.get("warmup_runs", "1")), int(opts.get("num_runs", "50"))
    print("STARTING!")
    print(f"Num threads: [{threads}]")
    print(f"Graph: [{graph}]")
    if not _local(root, graph).is_file():
        print(f"ERROR: Could not load model from {graph}")
        return 1
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    t0 = time.perf_counter()
    ip = Interpreter(model_path=str(_local(root, graph)), num_threads=threads)
    ip.allocate_tensors()
    inp = ip.get_input_details()[0]
    ip.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=np.float32))
    init_us = (time.perf_counter() - t0) * 1e6
    print(f"Loaded model {graph}")
    print("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    print(f"Initialized session in {init_us / 1e3:.3f}ms.")

    def timed(n: int) -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            ip.invoke()
            out.append((time.perf_counter() - t) * 1e6)
        return out

    def line(ts: list[float]) -> str:
        a = np.asarray(ts)
        return (f"count={len(a)} first={int(a[0])} curr={int(a[-1])} min={int(a.min())} "
                f"max={int(a.max())} avg={a.mean():.6g} std={int(a.std())}")

    print(f"Running benchmark for at least {warm} iterations and at least 0.5 seconds but "
          "terminate if exceeding 150 seconds.")
    w = timed(max(warm, 1))
    print(line(w))
    print()
    print(f"Running benchmark for at least {runs} iterations and at least 1 seconds but "
          "terminate if exceeding 150 seconds.")
    r = timed(max(runs, 1))
    print(line(r))
    print()
    print(f"Inference timings in us: Init: {int(init_us)}, First inference: {int(w[0])}, "
          f"Warmup (avg): {float(np.mean(w)):.6g}, Inference (avg): {float(np.mean(r)):.6g}")
    print("Memory footprint delta from the start of the tool (MB): init=1.2 overall=3.4")
    return 0


def _executor_runner(root: Path, argv: list[str]) -> int:
    """ExecuTorch's ``executor_runner``: inputs of ones, one log line per execution."""
    binary = argv[0]
    if not _local(root, binary).is_file():
        print(f"/system/bin/sh: {binary}: inaccessible or not found", file=sys.stderr)
        return 127
    opts = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
    model, n = opts.get("model_path", "model.pte"), int(opts.get("num_executions", "1"))
    log = "I 00:00:00.000000 executorch:executor_runner.cpp:{}] {}"
    if not _local(root, model).is_file():
        print(log.format(120, f"FileDataLoader::from() failed: 0x22 for {model}"))
        return 1
    import torch
    from executorch.runtime import Runtime

    data = _local(root, model).read_bytes()
    program = Runtime.get().load_program(data)
    method = program.load_method("forward")
    x = torch.ones(*method.metadata.input_tensor_meta(0).sizes())
    print(log.format(150, f"Model file {model} is loaded."))
    total = 0.0
    for i in range(n):
        t = time.perf_counter()
        method.execute([x])
        ms = (time.perf_counter() - t) * 1e3
        total += ms
        print(log.format(300, f"Iteration {i + 1} of {n}: {ms:f} ms"))
    print(log.format(310, f"Model executed successfully {n} time(s) in {total:f} ms."))
    print(log.format(320, "1 outputs: "))
    return 0


def _shell(root: Path, cmd: str) -> int:
    argv = shlex.split(cmd)
    if argv[:1] == ["ls"]:
        p = _local(root, argv[1])
        if p.exists():
            print(argv[1])
            return 0
        print(f"ls: {argv[1]}: No such file or directory", file=sys.stderr)
        return 1
    if argv[:2] == ["mkdir", "-p"]:
        _local(root, argv[2]).mkdir(parents=True, exist_ok=True)
        return 0
    if argv[:1] == ["taskset"]:
        argv = argv[2:]
    if argv and Path(argv[0]).name == "executor_runner":
        return _executor_runner(root, argv)
    return _benchmark(root, argv)


def main(args: list[str]) -> int:
    root = Path(os.environ["FAKE_ADB_ROOT"])
    serials = [s for s in os.environ.get("FAKE_ADB_SERIALS", "").split(",") if s]
    if args[:1] == ["devices"]:
        print("List of devices attached")
        for s in serials:
            print(f"{s}\tdevice")
        print()
        return 0
    if args[:1] == ["-s"]:
        serial, args = args[1], args[2:]
        if serial not in serials:
            print(f"adb: device '{serial}' not found", file=sys.stderr)
            return 1
    elif len(serials) != 1:
        print("adb: more than one device/emulator" if serials else "adb: no devices/emulators "
              "found", file=sys.stderr)
        return 1
    if args[:1] == ["push"]:
        dst = _local(root, args[2])
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args[1], dst)
        print(f"{args[1]}: 1 file pushed, 0 skipped.")
        return 0
    if args[:1] == ["shell"]:
        return _shell(root, " ".join(args[1:]))
    print(f"adb: unknown command {' '.join(args)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
