"""The embedded default sweep, whole, as `make demo` runs it: real MiniLM, real BBC News, real
Ray Tune search, the retrain with seeds, the reports and the hand-off (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tuner.cli import main

pytestmark = pytest.mark.ray  # every test here runs on a real Ray instance or cluster

DEFAULT_SWEEP = Path(__file__).resolve().parents[1] / "search_spaces" / "bbc_news_minilm.yaml"


@pytest.mark.slow
@pytest.mark.usefixtures("ray_shutdown")
def test_default_sweep_retrains_the_best_and_reaches_90_percent(tmp_path: Path, capsys):
    started = time.monotonic()
    assert main(["sweep", str(DEFAULT_SWEEP), f"resources.storage_path={tmp_path}"]) == 0
    wall = time.monotonic() - started
    out, err = capsys.readouterr()
    print(out)
    # Ray's and Tune's own warnings go to the run folder's tune.log, not the terminal.
    noise = [line for line in (out + err).splitlines() if "WARNING" in line or "ray." in line]
    assert not noise, noise
    run_dir = next(tmp_path.glob("bbc-news-minilm-*"))
    trials = json.loads((run_dir / "trials.json").read_text())["trials"]
    retrain = json.loads((run_dir / "retrain.json").read_text())
    best = yaml.safe_load((run_dir / "best.yaml").read_text())

    planned_trials = yaml.safe_load(DEFAULT_SWEEP.read_text())["search"]["num_trials"]
    assert len(trials) == planned_trials and all(t["outcome"] != "failed" for t in trials)
    stopped = sum(t["outcome"] == "stopped" for t in trials)
    winner = retrain["candidates"][0]
    validation, test = winner["validation"], winner["test"]
    print(
        f"\ndefault sweep: {wall:.0f}s wall in all ({wall - retrain['seconds']:.0f}s search, "
        f"{retrain['seconds']:.0f}s retrain of {len(retrain['candidates'])} configurations x "
        f"{len(retrain['seeds'])} seeds); search best validation accuracy "
        f"{trials[0]['objective']:.4f}, {stopped} of {len(trials)} trials stopped by ASHA"
    )
    for candidate in retrain["candidates"]:
        v, t = candidate["validation"], candidate["test"]
        print(
            f"  retrained {candidate['trial']}: validation {v['mean']:.4f} ± {v['std']:.4f} "
            f"[{v['low']:.4f}, {v['high']:.4f}], test {t['mean']:.4f} ± {t['std']:.4f} "
            f"[{t['low']:.4f}, {t['high']:.4f}]"
        )
    print(f"  statistically tied with the winner: {[tie['trial'] for tie in retrain['ties']]}")

    planned = yaml.safe_load(DEFAULT_SWEEP.read_text())["retrain"]
    assert trials[0]["objective"] >= 0.90
    assert len(retrain["candidates"]) == planned["top_k"] and all(
        len(c["runs"]) == planned["seeds"] for c in retrain["candidates"]
    )
    assert validation["mean"] >= 0.90 and test["mean"] >= 0.85
    assert best["source_trial"] == winner["trial"]
    _screenshot(run_dir / "report.html")


def _screenshot(page: Path) -> None:
    """Draw the report in headless Chromium; keep the picture where TUNER_SCREENSHOT says."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    target = os.environ.get("TUNER_SCREENSHOT")
    if chromium is None or target is None:
        return
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1300,5200", "--virtual-time-budget=15000", f"--screenshot={target}",
         page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    print(f"  report drawn by Chromium: {target}")
