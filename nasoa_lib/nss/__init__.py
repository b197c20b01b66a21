"""Network Space Search (Hong et al., "Network Space Search for Pareto-Efficient Spaces").

``spaces``: Expanded Search Space, network (Elite) spaces, architectures (Sec. 3.2, 4.1).
``flops``: analytic FLOPs of architectures and expected FLOPs of spaces (Eq. 4).
``supernet``: weight-sharing super network with channel/block masking; stand-alone ``build``.
``search``: Gumbel-softmax space search with warm-up and the FLOPs loss (Sec. 3.3-3.4, Eq. 5).
``evaluate``: evaluation super network, sampling of spaces, NAS inside spaces (Sec. 4.2-4.3).
``macro``: an Elite Space as a macro search space for our NAS.
Notebook 09's experiment (plan, runs, tables, figures, claims): :mod:`nasoa_lib.studies.network_space_search`.
"""

from nasoa_lib.nss.flops import (
    architecture_flops,
    architecture_params,
    flops_loss,
    format_flops,
    space_expected_flops,
)
from nasoa_lib.nss.macro import EliteMacroSpace, elite_macro_space
from nasoa_lib.nss.search import NSSConfig, SpaceDistribution, gumbel_softmax_hard, run_search, temperature
from nasoa_lib.nss.spaces import Architecture, ExpandedSpace, NetworkSpace
from nasoa_lib.nss.supernet import StandaloneNet, SuperNet, build

__all__ = [
    "Architecture", "EliteMacroSpace", "ExpandedSpace", "NSSConfig", "NetworkSpace", "SpaceDistribution",
    "StandaloneNet", "SuperNet", "architecture_flops", "architecture_params", "build", "elite_macro_space",
    "flops_loss", "format_flops", "gumbel_softmax_hard", "run_search", "space_expected_flops", "temperature",
]
