"""Figures as PNG files: DET curves, the dynamic margin (the paper's Fig 3, for the cosine
margins of AM/DAM-Softmax or the angular ones of AAM/DAM-AAM-Softmax) and the distribution of
cos(theta_y) during training (Fig 1).

matplotlib is used through its object interface (Figure + the Agg canvas), never pyplot: no
display, no global figure state, and nothing to close.  Files are written by rename.
"""
from typing import NamedTuple, Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.atomic import written_whole
from pytorch_modules.heads import angular_margin_logit, dynamic_margin
from pytorch_modules.reports.cos_histogram import read_histograms
from pytorch_modules.scoring.metrics import compute_eer, compute_min_dcf, detection_error_tradeoff

# NIST's DET axes: error rates on the normal-deviate (probit) scale, ticks in percent.
DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
# Added when a marked point lies beyond 45% (a poor model's minDCF point has a high miss
# rate, an untrained model's EER is near 50%), so that it stays in view.
# The axis then spans twice the range, so the 0.2% tick, too close to 0.1%, is left out.
DET_TICKS_HIGH = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)
HIGH_POINT = 0.45
DET_LIMITS = (0.0005, 0.5)
# Error rates of 0 and 1 map to -inf and +inf; they are drawn at the edge, off the axes.
PROB_FLOOR = 1e-7
# Probit grid on which consecutive points that draw alike are merged (Vox1-E has 580,000).
DET_RESOLUTION = 2e-3


def labelled_path(spec):
    """A command line's 'LABEL=PATH' or 'PATH' -> (label, path); the path is its own label."""
    label, sep, path = spec.partition("=")
    return (label, path) if sep and label else (spec, spec)


def probit(p):
    """The standard normal deviate of probabilities p (the inverse normal CDF), as float64;
    0 and 1 are clipped to PROB_FLOOR and 1 - PROB_FLOOR."""
    p = np.clip(np.asarray(p, dtype=np.float64), PROB_FLOOR, 1 - PROB_FLOOR)
    return torch.special.ndtri(torch.as_tensor(p)).numpy()


def save_figure(fig, out_png, dpi=100):
    """Render with Agg and write the PNG by rename, so a reader never sees half a file."""
    FigureCanvasAgg(fig)
    with written_whole(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


class DetSystem(NamedTuple):
    label: str
    scores: np.ndarray
    labels: np.ndarray   # 1 target, 0 nontarget


class DetSummary(NamedTuple):
    p_fa: np.ndarray
    p_miss: np.ndarray
    eer: float
    min_dcf: float
    dcf_point: tuple     # (p_fa, p_miss) where minDCF is reached


def det_summary(scores, labels, p_target=0.01):
    """The DET curve of one system with its EER and its minDCF operating point."""
    curve = detection_error_tradeoff(scores, labels)
    eer, _ = compute_eer(scores, labels)
    min_dcf, threshold = compute_min_dcf(scores, labels, p_target)
    at = int(np.flatnonzero(curve.thresholds == threshold)[0])
    return DetSummary(curve.p_fa, curve.p_miss, eer, min_dcf,
                      (float(curve.p_fa[at]), float(curve.p_miss[at])))


def thin_for_drawing(x, y, resolution=DET_RESOLUTION):
    """Drop consecutive points that fall in the same cell of a `resolution` grid: a million
    DET points draw as a few thousand, and the line looks the same."""
    qx, qy = np.floor(x / resolution), np.floor(y / resolution)
    keep = np.ones(len(x), dtype=bool)
    keep[1:] = (qx[1:] != qx[:-1]) | (qy[1:] != qy[:-1])
    keep[-1] = True
    return x[keep], y[keep]


def _percent(p):
    return f"{100 * p:g}"


def _det_axes(ax, high):
    ticks = DET_TICKS_HIGH if high else DET_TICKS
    upper = 0.995 if high else DET_LIMITS[1]
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(probit(ticks), [_percent(t) for t in ticks])
    limits = probit([DET_LIMITS[0], upper])
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    ax.set_aspect("equal")
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.plot(limits, limits, color="0.6", linestyle=":", linewidth=0.8)  # P_miss = P_fa
    ax.set_xlabel("False alarm probability (%)")
    ax.set_ylabel("Miss probability (%)")


def _in_view(ax, point):
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    return x0 <= point[0] <= x1 and y0 <= point[1] <= y1


def plot_det(systems: Sequence[DetSystem], out_png, title=None, p_target=0.01):
    """det_figure written to out_png; returns {label: DetSummary}."""
    fig, summaries = det_figure(systems, title, p_target)
    save_figure(fig, out_png)
    return summaries


def det_figure(systems: Sequence[DetSystem], title=None, p_target=0.01):
    """One DET plot of several systems scored on the same trials (e.g. AM vs DAM), with each
    system's EER point (circle) and minDCF(p_target) operating point (square) in the legend,
    both axes in probit units labelled in %.  Returns (Figure, {label: DetSummary})."""
    summaries = {s.label: det_summary(s.scores, s.labels, p_target) for s in systems}
    fig = Figure(figsize=(6.4, 6.4))
    ax = fig.subplots()
    marked = [p for s in summaries.values() for p in (s.eer, *s.dcf_point)]
    _det_axes(ax, high=max(marked) > HIGH_POINT)
    colours = [f"C{i}" for i in range(10)]
    for index, (label, s) in enumerate(summaries.items()):
        colour = colours[index % len(colours)]
        ax.plot(*thin_for_drawing(probit(s.p_fa), probit(s.p_miss)), color=colour,
                linewidth=1.6, label=label)
        ax.plot(probit(s.eer), probit(s.eer), "o", color=colour, markersize=7,
                markeredgecolor="black", label=f"{label}: EER {100 * s.eer:.2f}%")
        # With few trials the minDCF point often has no false alarms, which the probit axis
        # cannot show (P_fa = 0 is -inf): the legend says so rather than leave it unexplained.
        hidden = "" if _in_view(ax, probit(s.dcf_point)) else " (off the axes)"
        ax.plot(*probit(s.dcf_point), "s", color=colour, markersize=7, markeredgecolor="black",
                label=f"{label}: minDCF({p_target:g}) {s.min_dcf:.3f}{hidden}")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig, summaries


def am_margin(cos, margin):
    """AM-Softmax's constant margin m (Eq 5-6), as an array shaped like cos; AAM-Softmax's too
    (an angle there)."""
    return np.full_like(np.asarray(cos, dtype=np.float64), margin)


def dam_margin(cos, margin, lam):
    """DAM-Softmax's dynamic margin (heads.dynamic_margin) of numbers or arrays, as float64;
    DAM-AAM-Softmax's m_i is the same number, used as an angle."""
    return dynamic_margin(torch.as_tensor(np.asarray(cos, dtype=np.float64)), margin, lam).numpy()


def angular_target(cos, margin):
    """The angular heads' target logit / s, cos(theta + m) (heads.angular_margin_logit, with its
    treatment past pi), of numbers or arrays; margin a number or an array shaped like cos."""
    cos = torch.as_tensor(np.asarray(cos, dtype=np.float64))
    return angular_margin_logit(cos, torch.as_tensor(np.asarray(margin, dtype=np.float64))).numpy()


def plot_margin(margin, lam, out_png, cos_range=(0.0, 1.0), title=None, angular=False):
    """margin_figure written to out_png."""
    save_figure(margin_figure(margin, lam, cos_range, title, angular), out_png)


def margin_figure(margin, lam, cos_range=(0.0, 1.0), title=None, angular=False) -> Figure:
    """The paper's Fig 3: the dynamic margin against cos(theta_y) (left, with dotted tangents
    whose slopes are its rate of reduction), and the target logit / s it gives, cos - m_i
    (right), with AM-Softmax's constant margin m for reference.
    lam None draws AM-Softmax alone.

    angular True draws the angular heads instead: AAM-Softmax's constant angle m and
    DAM-AAM-Softmax's m_i (the same curve, in radians added to theta_y), their target logits
    cos(theta_y + m) and cos(theta_y + m_i); lam None draws AAM-Softmax alone."""
    cos = np.linspace(*cos_range, 401)
    fig = Figure(figsize=(10, 4.2))
    left, right = fig.subplots(1, 2)
    const, dyn = ("AAM", "DAM-AAM") if angular else ("AM", "DAM")
    unit = " rad" if angular else ""
    left.plot(cos, am_margin(cos, margin), color="C0", linestyle="--", linewidth=1.5,
              label=f"{const}: m = {margin:g}{unit}")
    right.plot(cos, cos, color="0.5", linestyle=":", label="softmax: cos (no margin)")
    if angular:
        right.plot(cos, angular_target(cos, margin), color="C0", linestyle="--",
                   label=r"AAM: cos($\theta$ + m)")
    else:
        right.plot(cos, cos - margin, color="C0", linestyle="--", label="AM: cos - m")
    if lam is not None:
        m_dam = dam_margin(cos, margin, lam)
        left.plot(cos, m_dam, color="C1", linewidth=2,
                  label=f"{dyn}: m exp(1 - cos) / $\\lambda$ (m={margin:g}, $\\lambda$={lam:g})"
                        + (", an angle" if angular else ""))
        _mark_margin_values(left, margin, lam, cos_range)
        _draw_margin_slopes(left, cos, margin, lam, cos_range)
        if angular:
            right.plot(cos, angular_target(cos, m_dam), color="C1", linewidth=2,
                       label=r"DAM-AAM: cos($\theta$ + m$_i$)")
        else:
            right.plot(cos, cos - m_dam, color="C1", linewidth=2, label=r"DAM: cos - m$_i$")
    left.set_ylabel("angular margin (radians, added to $\\theta_y$)" if angular else
                    "margin")
    left.set_title("angular margin" if angular else "margin")
    right.set_ylabel("target logit / s")
    right.set_title("target logit")
    for ax in (left, right):
        ax.set_xlabel(r"$\cos\theta_y$")
        ax.grid(True, color="0.85", linewidth=0.6)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _draw_margin_slopes(ax, cos, margin, lam, cos_range):
    """The paper's dotted lines: the tangents of m_i at the ends of the range, whose slopes
    d m_i / d cos = -m_i are the rate at which the margin falls as a sample gets easier."""
    for c in cos_range:
        value = float(dam_margin(c, margin, lam))
        ax.plot(cos, value - value * (cos - c), color="C1", linestyle=":", linewidth=1,
                label=f"slope at cos = {c:g}: {-value:.3f}")


def _mark_margin_values(ax, margin, lam, cos_range):
    """Mark and print m_i at cos = 0 and cos = 1 (0.2718 and 0.1 for the paper's m, lambda)."""
    for c in (0.0, 1.0):
        if cos_range[0] <= c <= cos_range[1]:
            value = float(dam_margin(c, margin, lam))
            ax.plot(c, value, "o", color="C1")
            ax.annotate(f"{value:.4f}", (c, value), textcoords="offset points",
                        xytext=(-30 if c == 1.0 else 6, 8), fontsize=9)


def plot_cos_histograms(histograms, out_png, title=None):
    """The paper's Fig 1: distributions of cos(theta_y), one curve per label.

    histograms: {label: (bin_edges, counts)}; each is drawn as a density (area 1), so epochs
    and runs with different numbers of samples compare directly."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    colours = _gradient(len(histograms))
    for colour, (label, (edges, counts)) in zip(colours, histograms.items()):
        edges, counts = np.asarray(edges, dtype=np.float64), np.asarray(counts, dtype=np.float64)
        total = counts.sum()
        density = counts / (total * np.diff(edges)) if total > 0 else counts
        ax.stairs(density, edges, color=colour, linewidth=1.6, label=label)
    ax.set_xlabel(r"$\cos\theta_y$ (target class)")
    ax.set_ylabel("density")
    ax.set_xlim(-1, 1)
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, out_png)


def _gradient(n):
    """n colours from dark to light (early to late epochs), distinct enough to tell apart."""
    from matplotlib import colormaps
    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]



# The epochs drawn by default (bin/plot_cos_hist.py): up to this many spread over training.
MAX_DEFAULT_EPOCHS = 6


def default_epochs(available, several_files):
    """The last epoch for a comparison of runs; else up to six spread over training."""
    if several_files:
        return [available[-1]]
    picks = np.linspace(0, len(available) - 1, min(MAX_DEFAULT_EPOCHS, len(available)))
    return [available[int(round(i))] for i in picks]


def select_histograms(specs, wanted=None):
    """{curve label: (edges, counts)} of the [LABEL=]FILE specs at the wanted epochs."""
    several = len(specs) > 1
    histograms = {}
    for label, path in map(labelled_path, specs):
        by_epoch = read_histograms(path)
        for epoch in wanted or default_epochs(list(by_epoch), several):
            if epoch not in by_epoch:
                raise RecipeError(f"{path} has no histogram for epoch {epoch} (it has epochs "
                                  f"{min(by_epoch)}-{max(by_epoch)}).")
            histograms[f"{label} epoch {epoch}" if several else f"epoch {epoch}"] = by_epoch[epoch]
    return histograms
