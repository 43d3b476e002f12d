"""Model configuration: one dataclass for every torch model, with a strict JSON round trip."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from epcli.core.checks import check_type
from epcli.core.errors import EpcliError
from epcli.core.schema import (
    AUTO_MOTIF_SITES,
    MOTIF_KINDS,
    MOTIF_SITE_SETS,
    PROTOTYPE_KINDS,
    TORCH_KINDS,
)

#: Torch model kinds :func:`build_model` knows: ``prism`` is the motif-grounded model (the
#: default), ``prism-scratch`` the same U_I - R_E design over a from-scratch convolution and
#: cross-attention encoder (for whole genomes on a GPU), ``crossattn`` a plain baseline.
#: Kinds with an environment resistance R_E and cell prototypes.
#: Kinds built on a motif set (their config records it).


@dataclass
class ModelConfig:
    """Hyper-parameters of a torch EPI model (:class:`PrismModel` or :class:`CrossAttnModel`).

    Attributes
    ----------
    kind : str
        ``"prism"`` (motif-grounded U_I - R_E over T), ``"prism-scratch"`` (the same over a
        from-scratch encoder) or ``"crossattn"`` (plain cross-attention baseline). The fields
        ``motif*``, ``n_free_filters``, ``free_filter_len``, ``interaction_rank``,
        ``use_interaction``, ``use_motif_prior`` and ``sparsity`` apply to ``prism``; the
        encoder and attention fields to the other two.
    d_model : int
        Channels of the encoder and width of the tokens.
    stem_kernel : int
        Kernel (bp) of the stem convolution on one-hot DNA; odd.
    ms_kernels : tuple of int
        Kernels of the parallel branches of each multi-scale block; odd.
    ms_depthwise : bool
        Multi-scale branches are depthwise (per-channel) convolutions followed by a shared
        pointwise FFN (cheap, ConvNeXt style); ``False`` uses full convolutions.
    pools : tuple of int
        One stage per entry after the stem: max-pool by that factor, then a multi-scale
        block. A window of L bp becomes ``ceil(L / prod(pools))`` tokens (ceil at every stage):
        3,000 bp -> 47 and 2,000 bp -> 32 with the default (8, 4, 2).
    n_heads : int
        Attention heads; ``d_model / n_heads`` must be even when RoPE is used.
    n_layers : int
        Bidirectional cross-attention layers (1 or 2).
    ffn_mult : int
        Hidden width of feed-forward layers as a multiple of ``d_model``.
    env_dim : int
        Width of the environment features e(x) and of the prototypes (prism only).
    dropout : float
        Dropout in the encoder, attention and heads (0 <= p < 1).
    use_distance : bool
        Append the log distance to the pair vector z.
    use_re : bool
        Environment resistance R_E (prism only); when ``False`` R_E is identically 0.
    use_rope : bool
        Rotary position embeddings on queries and keys (prism only).
    rope_base : float
        RoPE frequency base (tokens are ~50 per window, so a small base is used).
    env_detach : bool
        Stop gradients of the R_E path at the pair vector z, so that R_E cannot reshape the
        encoder behind U_I (prism only).
    t_min, t_max : float
        Bounds of the temperature T (``0 < t_min < t_max``).
    re_bound : float
        Bound of |R_E|.
    motifs : str
        Motif set of ``prism``: ``jaspar2024`` (default), ``jaspar2026``,
        ``jaspar:RELEASE:COLLECTION:TAXON`` or a JASPAR/MEME file (see
        :func:`epcli.motifs.load_motifs`).
    motif_ids, motif_names : list of str or None
        IDs and TF names of the loaded motifs, in the order of the PWM layer (filled in by
        training; their number fixes the layer's shape).
    motif_checksum : str or None
        Checksum of the motif matrices (:meth:`epcli.motifs.MotifSet.checksum`).
    motif_width : int
        Length of the longest motif (padded width of the PWM layer).
    motif_bins : int
        Rings of distance from the window centre over which hits are pooled with learned
        positional weights.
    motif_sites : str
        How sites are counted: ``auto`` (the default: training chooses ``consensus+cores`` or
        ``levels+cores`` by the warm start's held-out block AUPR, and the saved config names
        the choice), ``consensus+cores`` (hits at four relative
        log-odds levels blended into one feature, and each matrix's whole IUPAC consensus at
        0-2 mismatches and its most informative 8, 6 and 5 bp cores), ``levels+cores`` (the
        same consensus models, and hits at six log-odds levels, each a feature of its own:
        for sites defined by PWM score thresholds), ``rates+cores`` (the same consensus
        models, and hits at five hit rates per position, each matrix's own thresholds from
        its exact score distribution, as a p-value threshold sets them), ``consensus+core``
        (no 5 bp core) or
        ``consensus`` (the whole consensus only; saved models whose config does not name a
        set were trained with it).
    motif_refine_levels : bool
        With a site set of one view per shared log-odds level (``levels+cores``), the warm
        start moves each used view's level to the nearby level (within 0.04) that scores
        the held-out genome block best, then each such view's matrix to a uniform
        background where that scores it better (:mod:`epcli.model.motif_levels`).
    motif_refine_consensus : bool
        The warm start edits the string of each consensus or core view that an E x P pair
        or one of the largest motif terms reads (opens or narrows a position, drops or adds
        an end base) while an edit scores the held-out genome block better
        (:mod:`epcli.model.motif_consensus`). Off by default: on the development rule it
        made the planted RUNX, NF-kB and IRF sites' counts exact or closer, but the unseen
        cells scored no better (docs/benchmarks.md).
    motif_finetune : bool
        Train the PWM weights (slower: no scan can be reused); otherwise they stay frozen.
    use_motif_prior : bool
        Initialise the PWM layer from the motif set; ``False`` starts it at random (and
        trains it), the ablation of the prior.
    n_free_filters, free_filter_len : int
        Free filters learned from scratch beside the PWMs, and their length (bp).
    interaction_rank : int
        Rank R of the enhancer x promoter motif interaction W = U^T V; the warm start
        chooses up to R motif pairs, those that pass their tests, and gives each one rank
        (16 by default).
    use_interaction : bool
        Include the E x P interaction term in U_I.
    sparsity : float
        Weight of the L1 penalty on motif weights, interaction factors and R_E gates.
    motif_cache_mb : int
        Memory bound (MiB) of the memo of frozen scans (0 turns it off).
    """

    kind: str = "prism"
    d_model: int = 64
    stem_kernel: int = 15
    ms_kernels: tuple[int, ...] = (7, 15, 31)
    ms_depthwise: bool = True
    pools: tuple[int, ...] = (8, 4, 2)
    n_heads: int = 4
    n_layers: int = 1
    ffn_mult: int = 2
    env_dim: int = 16
    dropout: float = 0.1
    use_distance: bool = True
    use_re: bool = True
    use_rope: bool = True
    rope_base: float = 100.0
    env_detach: bool = False
    t_min: float = 0.25
    t_max: float = 4.0
    re_bound: float = 3.0
    motifs: str = "jaspar2024"
    motif_ids: list[str] | None = None
    motif_names: list[str] | None = None
    motif_checksum: str | None = None
    motif_width: int = 0
    motif_bins: int = 4
    motif_sites: str = AUTO_MOTIF_SITES
    motif_refine_levels: bool = True
    motif_refine_consensus: bool = False
    motif_finetune: bool = False
    use_motif_prior: bool = True
    n_free_filters: int = 4
    free_filter_len: int = 15
    interaction_rank: int = 16
    use_interaction: bool = True
    sparsity: float = 1e-3
    motif_cache_mb: int = 2048

    def __post_init__(self) -> None:
        self.ms_kernels = tuple(self.ms_kernels)
        self.pools = tuple(self.pools)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check types and ranges of every field.

        Raises
        ------
        EpcliError
            Naming the field, the bad value and what is allowed.
        """
        for f in _public_fields():
            check_type("model config", f.name, getattr(self, f.name), f.type)

        def bad(name: str, allowed: str) -> EpcliError:
            return EpcliError(
                f"model config: {name}={getattr(self, name)!r} is not allowed",
                hint=allowed,
            )

        if self.kind not in TORCH_KINDS:
            raise bad("kind", "one of " + ", ".join(TORCH_KINDS))
        if self.d_model < 4:
            raise bad("d_model", "an integer >= 4")
        for name in ("stem_kernel",):
            k = getattr(self, name)
            if k < 1 or k % 2 == 0:
                raise bad(name, "an odd positive integer")
        if not self.ms_kernels or any(k < 1 or k % 2 == 0 for k in self.ms_kernels):
            raise bad("ms_kernels", "a non-empty list of odd positive integers")
        if any(p < 1 for p in self.pools):
            raise bad("pools", "a list of integers >= 1 (may be empty)")
        if self.n_heads < 1 or self.d_model % self.n_heads:
            raise bad("n_heads", f"a positive divisor of d_model={self.d_model}")
        if self.use_rope and (self.d_model // self.n_heads) % 2:
            raise bad("n_heads", "d_model / n_heads must be even when use_rope is true")
        if self.n_layers not in (1, 2):
            raise bad("n_layers", "1 or 2")
        if self.ffn_mult < 1:
            raise bad("ffn_mult", "an integer >= 1")
        if self.env_dim < 1:
            raise bad("env_dim", "an integer >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise bad("dropout", "a number in [0, 1)")
        if not (math.isfinite(self.rope_base) and self.rope_base > 1.0):
            raise bad("rope_base", "a finite number > 1")
        if not (math.isfinite(self.t_min) and math.isfinite(self.t_max)):
            raise bad("t_min", "finite temperature bounds")
        if not 0.0 < self.t_min < self.t_max:
            raise bad("t_max", f"0 < t_min < t_max (t_min={self.t_min})")
        if not (math.isfinite(self.re_bound) and self.re_bound > 0):
            raise bad("re_bound", "a finite number > 0")
        if self.motif_bins < 1:
            raise bad("motif_bins", "an integer >= 1")
        if self.motif_sites not in (AUTO_MOTIF_SITES, *MOTIF_SITE_SETS):
            raise bad("motif_sites", "one of " + ", ".join((AUTO_MOTIF_SITES, *MOTIF_SITE_SETS)))
        if self.motif_width < 0 or self.motif_cache_mb < 0 or self.n_free_filters < 0:
            raise bad("motif_width", "motif_width, motif_cache_mb, n_free_filters >= 0")
        if self.free_filter_len < 1 or self.interaction_rank < 1:
            raise bad("interaction_rank", "interaction_rank and free_filter_len >= 1")
        if not (math.isfinite(self.sparsity) and self.sparsity >= 0):
            raise bad("sparsity", "a finite number >= 0")
        if (self.motif_ids is None) != (self.motif_names is None) or (
            self.motif_ids is not None and len(self.motif_ids) != len(self.motif_names or [])
        ):
            raise bad("motif_names", "one name per motif ID")

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in _public_fields():
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build a config from a dict such as :meth:`to_dict` wrote; missing keys take defaults.

        Raises
        ------
        EpcliError
            On unknown keys (named, with the list of valid ones) or bad values.
        """
        if not isinstance(d, dict):
            raise EpcliError(f"model config must be a JSON object, got {type(d).__name__}")
        valid = [f.name for f in _public_fields()]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise EpcliError(
                "model config: unknown key(s) " + ", ".join(repr(k) for k in unknown),
                hint="valid keys: " + ", ".join(valid),
            )
        kw = dict(d)
        for key in ("ms_kernels", "pools"):
            if isinstance(kw.get(key), list):
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def components(self) -> dict[str, bool]:
        """Which optional components this config enables (for the model card)."""
        proto = self.kind in PROTOTYPE_KINDS
        if self.kind in MOTIF_KINDS:
            return {
                "distance": self.use_distance,
                "r_e": self.use_re,
                "motif_prior": self.use_motif_prior,
                "motif_finetune": self.motif_finetune,
                "free_filters": self.n_free_filters > 0,
                "interaction": self.use_interaction,
                "sparsity": self.sparsity > 0,
            }
        return {
            "distance": self.use_distance,
            "r_e": proto and self.use_re,
            "rope": proto and self.use_rope,
            "multi_scale": True,
            "cross_attention": True,
        }

    def n_tokens(self, length: int) -> int:
        """Number of tokens the encoder makes from a window of ``length`` bp."""
        t = int(length)
        for p in self.pools:
            t = -(-t // p)
        return t


def _public_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(ModelConfig) if not f.name.startswith("_")]
