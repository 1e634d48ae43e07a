"""Derived devices: another device's latencies times a documented factor.

``pixel7`` is derived from ``pixel6`` (DESIGN §6). The pixel6 table was measured single-threaded
with ``taskset 0x70`` (CPUs 4-6). Tensor G1 and G2 share one cluster layout (4 little, 2 middle,
2 prime): CPUs 4-5 are the middle cores, 6-7 the prime cores. A single busy thread allowed on
4-6 is migrated by Android's energy-aware scheduler to the biggest allowed core, the prime
Cortex-X1 (CPU 6); the data notes agree ("Cortex-X1 prime core at 2.80 GHz").

* Central assumption: X1 -> X1 (same micro-architecture, same 1 MB L2, LPDDR5 on both), so
  latency scales with the clock: 2.80 / 2.85 = 0.982.
* Pessimistic bound (slower Pixel 7): clock gains fully absorbed by memory-bound blocks and
  thermals: 1.00.
* Optimistic bound (faster Pixel 7): the thread actually sat on a middle core: A76 at 2.25 GHz
  -> A78 at 2.35 GHz, with A78's per-clock gain over A76 on fp32 NEON kernels taken as up to
  +25 % (A77 +20 % IPC over A76, A78 +7 % over A77; both keep 2x128-bit FMA pipes, so
  compute-bound kernels gain less): 2.25 / (2.35 * 1.25) = 0.766.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pixel7_derivation"]

G1_X1_GHZ, G2_X1_GHZ = 2.80, 2.85
G1_A76_GHZ, G2_A78_GHZ = 2.25, 2.35
A78_OVER_A76_MAX = 1.25


def pixel7_derivation() -> dict[str, Any]:
    """The ``derived`` section of the pixel7 profile: factor, bounds, assumption, uncertainty."""
    central = G1_X1_GHZ / G2_X1_GHZ
    low = G1_A76_GHZ / (G2_A78_GHZ * A78_OVER_A76_MAX)
    return {
        "from": "pixel6",
        "factor": round(central, 4),
        "factor_low": round(low, 4),
        "factor_high": 1.0,
        "assumption": (
            "pixel6 table measured single-threaded, taskset 0x70 (CPUs 4-6); the scheduler runs "
            "the thread on the prime Cortex-X1 (CPU 6). Pixel 7's Tensor G2 has the same X1 "
            f"core at {G2_X1_GHZ} GHz vs {G1_X1_GHZ} GHz, same L2 and LPDDR5, so latency "
            f"scales with clock: {G1_X1_GHZ}/{G2_X1_GHZ}."),
        "uncertainty": (
            f"factor in [{low:.3f}, 1.000]: 1.000 if the clock gain is absorbed by memory-bound "
            f"blocks or thermals; {low:.3f} if the thread ran on a middle core (A76 "
            f"{G1_A76_GHZ} GHz -> A78 {G2_A78_GHZ} GHz, A78 up to {A78_OVER_A76_MAX:.2f}x per "
            "clock). Replace with a measured Pixel 7 table (nas hw import) when one exists."),
    }
