"""The soak benchmark's growth figures (the run itself is a 30-minute measurement, not a test)."""

from __future__ import annotations

import numpy as np
import pytest

from distrl.bench.soak import growth, main


def test_growth_is_measured_after_the_warm_up_only():
    times = np.arange(0, 601, 10.0)  # Ten minutes, a sample every 10 s.
    mib = 2**20
    # 100 MiB rising fast during a 120 s warm-up, then 1 MiB per minute.
    rss = np.where(times < 120, 50 + 50 * times / 120, 100 + (times - 120) / 60) * mib
    figures = growth(times, rss, warmup_s=120)
    assert figures["rss_warm_mib"] == pytest.approx(100)
    assert figures["rss_end_mib"] == pytest.approx(108)
    assert figures["mib_per_min"] == pytest.approx(1.0)
    assert figures["growth_percent"] == pytest.approx(8.0)


@pytest.mark.parametrize("option, value", [("--minutes", "0"), ("--sample-every-s", "-1"),
                                           ("--warmup-fraction", "1")])
def test_bad_options_are_refused_before_anything_runs(option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([option, value])
    assert exit_info.value.code == 2 and option in capsys.readouterr().err
