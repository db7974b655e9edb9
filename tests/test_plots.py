"""DET curves, the margin figure and the cos(theta) histograms: valid, non-blank PNGs, the
probit axis, and the cos_theta_hist.tsv format."""
import math
import subprocess
from statistics import NormalDist

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from pytorch_modules.config import config_from_dict
from pytorch_modules.errors import RecipeError
from pytorch_modules.reports.cos_histogram import (
    CosThetaHistogram,
    bin_edges,
    read_histograms,
    write_epoch,
)
from pytorch_modules.reports.plots import (
    DetSystem,
    dam_margin,
    det_figure,
    det_summary,
    margin_figure,
    plot_cos_histograms,
    plot_det,
    plot_margin,
    probit,
    select_histograms,
    thin_for_drawing,
)
from pytorch_modules.scoring.cosine import read_scores
from pytorch_modules.scoring.metrics import compute_eer, compute_min_dcf, detection_error_tradeoff

from tiny_model import ROOT, run_module


def assert_png(path, min_width=300):
    """A readable PNG of a plausible size that is not one flat colour."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[1] >= min_width and pixels.shape[0] >= 200
    assert pixels[..., :3].var() > 0


def test_probit_maps_error_rates_to_normal_deviates():
    normal = NormalDist()
    for p in (0.001, 0.01, 0.1, 0.4, 0.5):
        assert probit(p) == pytest.approx(normal.inv_cdf(p), abs=1e-9)
    assert probit(0.01) == pytest.approx(-2.3263, abs=1e-4)
    assert probit(0.10) == pytest.approx(-1.2816, abs=1e-4)
    assert np.isfinite(probit([0.0, 1.0])).all()  # clipped, not infinite


def synthetic_trials(n, separation, seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int8)
    return rng.normal(size=n) + separation * labels, labels


def test_det_summary_marks_eer_and_min_dcf_points():
    scores, labels = synthetic_trials(3000, 2.5, 0)
    s = det_summary(scores, labels)
    assert s.eer == pytest.approx(compute_eer(scores, labels)[0])
    min_dcf, threshold = compute_min_dcf(scores, labels, 0.01)
    assert s.min_dcf == pytest.approx(min_dcf)
    p_fa, p_miss = s.dcf_point
    assert p_fa == pytest.approx(np.mean(scores[labels == 0] >= threshold))
    assert p_miss == pytest.approx(np.mean(scores[labels == 1] < threshold))
    assert p_miss + 99 * p_fa == pytest.approx(min_dcf)


def test_thinning_keeps_the_ends_and_the_shape():
    x = np.linspace(-3, 3, 100000)
    tx, ty = thin_for_drawing(x, -x)
    assert len(tx) < 4000 and (tx[0], tx[-1]) == (x[0], x[-1])
    np.testing.assert_allclose(ty, -tx)


def test_plot_det_of_two_systems(tmp_path):
    am = synthetic_trials(4000, 2.0, 1)
    dam = (am[0] + 0.8 * am[1], am[1])
    summaries = plot_det([DetSystem("AM", *am), DetSystem("DAM", *dam)], tmp_path / "det.png",
                         title="vox1_o")
    assert_png(tmp_path / "det.png")
    assert summaries["DAM"].eer < summaries["AM"].eer


def test_the_det_figure_draws_each_curve_and_point_in_probit_units():
    am = synthetic_trials(4000, 2.0, 1)
    fig, summaries = det_figure([DetSystem("AM", *am)])
    ax = fig.axes[0]
    curve, eer_point, dcf_point = [line for line in ax.lines if line.get_label().startswith("AM")]
    # the curve: P_fa and P_miss of every operating point (thinned), through the probit
    det = detection_error_tradeoff(*am)
    x, y = curve.get_data()
    inside = np.isin(x, probit(det.p_fa))
    assert inside.all() and len(x) > 100
    for xi, yi in list(zip(x, y))[1:-1:50]:
        k = np.flatnonzero(probit(det.p_fa) == xi)
        assert yi in probit(det.p_miss[k])
    eer = compute_eer(*am)[0]
    assert eer_point.get_data() == ([probit(eer)], [probit(eer)])
    assert eer_point.get_label() == f"AM: EER {100 * eer:.2f}%"
    assert [float(v[0]) for v in dcf_point.get_data()] == pytest.approx(
        list(probit(summaries["AM"].dcf_point)))
    # axes: ticks at probit(p) labelled in %, the same range on both
    ticks = dict(zip([t.get_text() for t in ax.get_xticklabels()], ax.get_xticks()))
    assert ticks["1"] == pytest.approx(probit(0.01)) and ticks["10"] == pytest.approx(probit(0.1))
    assert ax.get_xlim() == ax.get_ylim()


def test_plot_det_entry_point(tmp_path):
    scores, labels = synthetic_trials(200, 2.0, 2)
    pairs = [(f"e{i}", f"t{i}") for i in range(len(scores))]
    (tmp_path / "vox1_o").mkdir()
    trials = tmp_path / "vox1_o/trials"
    trials.write_text("".join(f"{e} {t} {'target' if l else 'nontarget'}\n"
                              for (e, t), l in zip(pairs, labels)))
    for name, shift in (("am", 0.0), ("dam", 0.5)):
        (tmp_path / f"{name}.scores").write_text(
            "".join(f"{e} {t} {s + shift * l:.6f}\n"
                    for (e, t), s, l in zip(pairs, scores, labels)))
    out = tmp_path / "plots/det_vox1_o.png"
    proc = run_module("pytorch_modules.bin.plot_det", "--trials", trials, "--out", out,
                      f"AM={tmp_path / 'am.scores'}", f"DAM={tmp_path / 'dam.scores'}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("AM: EER ")
    assert_png(out)
    (tmp_path / "bad.scores").write_text("e0 t1 0.5\n")
    with pytest.raises(RecipeError, match="bad.scores:1: expected the score of trial 1 'e0 t0'"):
        read_scores(tmp_path / "bad.scores", [e for e, _ in pairs], [t for _, t in pairs])


def test_dynamic_margin_values_of_fig3():
    assert dam_margin(1.0, 0.2, 2.0) == pytest.approx(0.1)
    assert dam_margin(0.0, 0.2, 2.0) == pytest.approx(0.2 * np.e / 2)


def test_the_margin_figure_draws_the_margins_and_target_logits_of_fig3():
    left, right = margin_figure(0.2, 2.0).axes
    by_label = {line.get_label(): line.get_data() for line in left.lines + right.lines}
    cos, am = by_label["AM: m = 0.2"]
    assert (cos[0], cos[-1]) == (0.0, 1.0) and np.all(am == 0.2)
    cos, dam = by_label["DAM: m exp(1 - cos) / $\\lambda$ (m=0.2, $\\lambda$=2)"]
    np.testing.assert_allclose(dam, 0.2 * np.exp(1 - cos) / 2)
    assert dam[0] == pytest.approx(0.2718, abs=1e-4) and dam[-1] == pytest.approx(0.1)
    # the dotted tangents at both ends: slope -m_i there (d/dcos of m exp(1 - cos) / lambda)
    cos, tangent = by_label["slope at cos = 0: -0.272"]
    np.testing.assert_allclose(tangent, 0.1 * np.e * (1 - cos))
    cos, tangent = by_label["slope at cos = 1: -0.100"]
    np.testing.assert_allclose(tangent, 0.1 - 0.1 * (cos - 1))
    assert by_label and all(line.get_linestyle() == ":" for line in left.lines
                            if line.get_label().startswith("slope"))
    cos, logit = by_label["DAM: cos - m$_i$"]
    np.testing.assert_allclose(logit, cos - 0.2 * np.exp(1 - cos) / 2)
    cos, am_logit = by_label["AM: cos - m"]
    np.testing.assert_allclose(am_logit, cos - 0.2)
    assert [line.get_label() for line in margin_figure(0.2, None).axes[0].lines] == [
        "AM: m = 0.2"]


def test_plot_margin(tmp_path):
    plot_margin(0.2, 2.0, tmp_path / "margin.png", title="DAM")
    assert_png(tmp_path / "margin.png", min_width=600)
    plot_margin(0.2, None, tmp_path / "am.png")  # AM-Softmax alone
    assert_png(tmp_path / "am.png", min_width=600)


def test_plot_margin_entry_point_reads_the_config(tmp_path):
    config = tmp_path / "dam.yaml"
    config.write_text("loss: {type: dam_softmax, margin: 0.3, scale: 30, lambda: 3}\n")
    proc = run_module("pytorch_modules.bin.plot_margin", "--config", config,
                      "--out", tmp_path / "margin.png")
    assert proc.returncode == 0, proc.stderr
    # m_i = 0.3 exp(1 - cos) / 3: 0.1 at cos 1, 0.2718 at cos 0
    assert "m_i = 0.1000 at cos 1, 0.2718 at cos 0" in proc.stdout
    assert_png(tmp_path / "margin.png", min_width=600)


def angular_target(cos, margin):
    """cos(theta + m) while theta + m <= pi, else cos(theta) - (1 - cos m), from the angle."""
    theta = np.arccos(cos)
    return np.where(theta + margin <= math.pi, np.cos(theta + margin), cos - (1 - np.cos(margin)))


def test_the_angular_margin_figure_draws_dam_aam_and_aam():
    """dam_aam_softmax: the same m_i curve, labelled as an angle, AAM's constant angle for
    reference, and the target logits cos(theta + m_i) and cos(theta + m), over all of [-1, 1]
    (past pi near -1 included)."""
    left, right = margin_figure(0.2, 2.0, (-1.0, 1.0), angular=True).axes
    by_label = {line.get_label(): line.get_data() for line in left.lines + right.lines}
    assert "radians" in left.get_ylabel()
    cos, aam = by_label["AAM: m = 0.2 rad"]
    assert (cos[0], cos[-1]) == (-1.0, 1.0) and np.all(aam == 0.2)
    cos, m_i = by_label["DAM-AAM: m exp(1 - cos) / $\\lambda$ (m=0.2, $\\lambda$=2), an angle"]
    np.testing.assert_allclose(m_i, 0.2 * np.exp(1 - cos) / 2)
    assert m_i[-1] == pytest.approx(0.1) and m_i[0] == pytest.approx(0.1 * np.e ** 2)
    cos, tangent = by_label["slope at cos = 1: -0.100"]
    np.testing.assert_allclose(tangent, 0.1 - 0.1 * (cos - 1))
    cos, logit = by_label["DAM-AAM: cos($\\theta$ + m$_i$)"]
    np.testing.assert_allclose(logit, angular_target(cos, 0.2 * np.exp(1 - cos) / 2), atol=1e-9)
    assert np.all(np.diff(logit) >= 0)
    cos, logit = by_label["AAM: cos($\\theta$ + m)"]
    np.testing.assert_allclose(logit, angular_target(cos, 0.2), atol=1e-9)
    assert (np.arccos(cos) + 0.2 > math.pi).sum() > 0   # the range reaches past pi
    cos, plain = by_label["softmax: cos (no margin)"]
    np.testing.assert_allclose(plain, cos)
    assert not any(label.startswith(("AM:", "DAM:")) for label in by_label)
    # aam_softmax: the constant angle alone
    left, right = margin_figure(0.3, None, angular=True).axes
    assert [line.get_label() for line in left.lines] == ["AAM: m = 0.3 rad"]
    assert [line.get_label() for line in right.lines] == ["softmax: cos (no margin)",
                                                         "AAM: cos($\\theta$ + m)"]
    assert "radians" in left.get_ylabel() and margin_figure(0.2, 2.0).axes[0].get_ylabel() == \
        "margin"


@pytest.mark.parametrize("loss, words", [
    ("{type: dam_aam_softmax, margin: 0.3, lambda: 3}",
     "m_i = 0.1000 at cos 1, 0.2718 at cos 0 (an angle, radians)"),
    ("{type: aam_softmax, margin: 0.25}", "constant margin m = 0.25 (an angle, radians)"),
    ("{type: am_softmax, margin: 0.25}", "constant margin m = 0.25 ->"),
])
def test_plot_margin_entry_point_reads_the_angular_configs(tmp_path, loss, words):
    config = tmp_path / "c.yaml"
    config.write_text(f"loss: {loss}\n")
    proc = run_module("pytorch_modules.bin.plot_margin", "--config", config,
                      "--out", tmp_path / "margin.png")
    assert proc.returncode == 0, proc.stderr
    assert words in proc.stdout
    assert_png(tmp_path / "margin.png", min_width=600)


@pytest.mark.slow
def test_plot_margin_entry_point_angular_margin_given_directly_and_refusals(tmp_path):
    proc = run_module("pytorch_modules.bin.plot_margin", "--margin", "0.2", "--lambda", "2",
                      "--angular", "--cos-min", "-1", "--out", tmp_path / "m.png")
    assert proc.returncode == 0, proc.stderr
    assert "m_i = 0.1000 at cos 1, 0.2718 at cos 0 (an angle, radians)" in proc.stdout
    assert_png(tmp_path / "m.png", min_width=600)
    config = tmp_path / "softmax.yaml"
    config.write_text("loss: {type: softmax}\n")
    proc = run_module("pytorch_modules.bin.plot_margin", "--config", config,
                      "--out", tmp_path / "no.png")
    assert proc.returncode != 0 and not (tmp_path / "no.png").exists()
    assert ("plot_margin draws the margins of am_softmax, dam_softmax, aam_softmax, "
            "dam_aam_softmax") in proc.stderr


@pytest.mark.slow
def test_make_plots_draws_the_margin_of_a_dam_aam_model(tmp_path):
    """Stage 6 (local/make_plots.sh --loss dam_aam_softmax) draws margin.png from final.pt."""
    exp = tmp_path / "exp"
    (exp / "scores").mkdir(parents=True)
    config = config_from_dict({"loss": {"type": "dam_aam_softmax", "margin": 0.2}})
    torch.save({"config": config.to_dict()}, exp / "final.pt")
    scores, labels = synthetic_trials(200, 2.0, 4)
    (tmp_path / "trials").write_text("".join(
        f"e{i} t{i} {'target' if l else 'nontarget'}\n" for i, l in enumerate(labels)))
    (exp / "scores/vox1_o.scores").write_text(
        "".join(f"e{i} t{i} {s:.6f}\n" for i, s in enumerate(scores)))
    proc = subprocess.run(["bash", "local/make_plots.sh", "--loss", "dam_aam_softmax", exp,
                           f"vox1_o:{tmp_path / 'trials'}"], cwd=ROOT, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                                          "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "m_i = 0.1000 at cos 1, 0.2718 at cos 0 (an angle, radians)" in proc.stdout
    assert_png(exp / "plots/margin.png", min_width=600)
    assert_png(exp / "plots/det_vox1_o.png")


def test_cos_histogram_accumulates_writes_and_reads(tmp_path):
    hist = CosThetaHistogram(num_bins=4)
    hist.add(torch.tensor([-1.0, -0.6, 0.2, 0.9, 1.0, 1.0000001]))
    assert hist.counts.tolist() == [2, 0, 1, 3]  # [-1,-.5) [-.5,0) [0,.5) [.5,1]
    path = tmp_path / "cos_theta_hist.tsv"
    write_epoch(path, 1, hist.edges, hist.counts)
    write_epoch(path, 2, hist.edges, [0, 1, 2, 3])
    write_epoch(path, 2, hist.edges, [0, 0, 2, 4])  # a resumed epoch replaces its lines
    lines = path.read_text().splitlines()
    assert lines[0] == "# epoch\tbin_lo\tbin_hi\tcount"
    assert lines[1] == "1\t-1.000000\t-0.500000\t2" and len(lines) == 9
    histograms = read_histograms(path)
    assert list(histograms) == [1, 2]
    edges, counts = histograms[2]
    np.testing.assert_allclose(edges, [-1, -0.5, 0, 0.5, 1])
    assert counts.tolist() == [0, 0, 2, 4]
    write_epoch(path, 1, hist.edges, hist.counts)  # rerun from epoch 1 drops epoch 2
    assert list(read_histograms(path)) == [1]


def test_malformed_histogram_names_file_and_line(tmp_path):
    path = tmp_path / "h.tsv"
    path.write_text("1\t-1\t0\t3\n1\t0.5\t1\t2\n")
    with pytest.raises(RecipeError, match=r"h.tsv:2: bin starts at 0.5 but the previous bin"):
        read_histograms(path)
    path.write_text("1\t-1\t0\tmany\n")
    with pytest.raises(RecipeError, match=r"h.tsv:1: expected 'EPOCH BIN_LO BIN_HI COUNT'"):
        read_histograms(path)


def test_plot_cos_histograms_and_entry_point(tmp_path):
    rng = np.random.default_rng(3)
    edges = bin_edges()
    path = tmp_path / "cos_theta_hist.tsv"
    for epoch in range(1, 9):
        values = np.clip(rng.normal(0.1 * epoch, 0.2, 2000), -1, 1)
        write_epoch(path, epoch, edges, np.histogram(values, edges)[0])
    plot_cos_histograms({"epoch 1": read_histograms(path)[1]}, tmp_path / "one.png")
    assert_png(tmp_path / "one.png")
    proc = run_module("pytorch_modules.bin.plot_cos_hist", "--out", tmp_path / "fig1.png", path)
    assert proc.returncode == 0, proc.stderr
    assert "6 histogram(s)" in proc.stdout  # up to six epochs spread over training
    assert_png(tmp_path / "fig1.png")
    both = select_histograms([f"AM={path}", f"DAM={path}"])  # runs compared at their last epoch
    assert list(both) == ["AM epoch 8", "DAM epoch 8"]
    with pytest.raises(RecipeError, match=r"has no histogram for epoch 9 \(it has epochs 1-8\)"):
        select_histograms([str(path)], [9])
