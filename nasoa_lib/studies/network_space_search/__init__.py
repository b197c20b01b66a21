"""Notebook 09: Network Space Search at our scale (Hong et al.).

The method (spaces, super network, Gumbel-softmax space search, evaluation super network and
NAS inside a space) lives in :mod:`nasoa_lib.nss`; this package is the notebook's experiment:

* :mod:`.study`: the plan, the runs per dataset (cached, resumable), tables and figures;
* :mod:`.claims`: the claims decided by the study's verdict rule (error vs FLOPs first, then
  Elite vs Expanded), with the noise floor beside each effect.
"""
