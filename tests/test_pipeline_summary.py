"""Walk-forward summaries across the models of one run."""

import numpy as np
import pytest

from engine import metrics
from engine.pipeline import ModelJob, summarize_jobs


def _job(seed, with_folds=True):
    rng = np.random.default_rng(seed)
    job = ModelJob(model_path=None, symbol=f"S{seed}")
    if with_folds:
        job.fold_returns = [rng.normal(0.0005 * seed, 0.01, 100) for _ in range(3)]
        job.folds = [{"metrics": {"total_return": float(np.prod(1 + r) - 1), "sharpe": float(r.mean() / r.std(ddof=1))},
                      "in_sample": False} for r in job.fold_returns]
    return job


def test_dsr_counts_every_model_of_the_run(monkeypatch):
    seen = []
    real = metrics.deflated_sharpe_ratio

    def spy(returns, trial_sharpes):
        seen.append(list(trial_sharpes))
        return real(returns, trial_sharpes)

    monkeypatch.setattr(metrics, "deflated_sharpe_ratio", spy)
    jobs = [_job(1), _job(2), _job(3, with_folds=False), _job(4)]
    summarize_jobs(jobs)
    assert len(seen) == 3 and all(len(t) == 4 for t in seen)  # N = 4 models, 3 with folds
    assert np.isnan(seen[0][2]) and np.isfinite([seen[0][i] for i in (0, 1, 3)]).all()
    for job in (jobs[0], jobs[1], jobs[3]):
        assert 0.0 <= job.summary["dsr"] <= 1.0
        assert job.summary["dsr"] <= job.summary["psr"] + 1e-12  # deflating never helps
    assert jobs[2].summary is None


def test_single_model_has_no_dsr():
    jobs = [_job(1)]
    summarize_jobs(jobs)
    assert jobs[0].summary["dsr"] is None and jobs[0].summary["psr"] == pytest.approx(
        metrics.probabilistic_sharpe_ratio(np.concatenate(jobs[0].fold_returns)))
