"""The example third-party plugin end to end: its shipped recipe trains and ``odepipe
extrapolate`` (a core bundle's command) works on its source, which declares the capability."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from odepipe.cli import make_cli, new_host

RECIPE = Path(__file__).resolve().parent / "example_plugin" / "odepipe_example" / "oscillator.yaml"
TINY = ["data.n_series=8", "data.n_test=4", "data.n_observed=8", "data.n_extrapolate=4",
        "train.batch_size=4", "train.eval_batch_size=4", "train.threads=1", "train.device=cpu",
        "encoder.hidden_size=4", "decoder.hidden_size=4"]


def test_extrapolate_works_on_the_example_oscillator_source(tmp_path):
    host = new_host()
    cli = make_cli(host)
    run_dir = tmp_path / "run"
    trained = CliRunner().invoke(cli, ["run", str(RECIPE), "train.steps=2", "train.plot=false",
                                       *TINY, "--out", str(run_dir), "-q"], obj=host)
    assert trained.exit_code == 0, trained.output
    seed = tmp_path / "seed.csv"
    seed.write_text("series,time,x,v\n" + "".join(
        f"a,{t},{1.0 - 0.1 * t:.3f},{-0.1:.3f}\n" for t in range(4)))
    result = CliRunner().invoke(cli, ["extrapolate", "--run", str(run_dir), "--input", str(seed),
                                      "--until", "8", "--points", "5"], obj=host)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("a: 4 observed up to 3; at 8: x=")
    rows = (run_dir / "extrapolations" / "seed.csv").read_text().splitlines()
    assert rows[0] == "series,time,x,v" and len(rows) == 6
