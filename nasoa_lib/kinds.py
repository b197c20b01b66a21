"""Store kinds named by light code (``nasoa status``) as well as by the modules that write them.

The writers (:mod:`nasoa_lib.zoo`, :mod:`nasoa_lib.train`, :mod:`nasoa_lib.metadata.collect`) import
torch; ``nasoa status`` answers in a fraction of a second because it imports none of them and reads
the kinds from here (``tests/test_cli.py`` pins that both say the same).
"""

CARD_KIND = "zoo_card"
"""One model card of the zoo (:mod:`nasoa_lib.zoo`)."""
TABLE_KIND = "step_time_table"
"""The zoo's step-time table on one device (:mod:`nasoa_lib.zoo`)."""
PRETRAINED_KIND = "pretrained"
"""Pretrained weights of one model and recipe (:mod:`nasoa_lib.train`)."""
META_RUN_KIND = "meta_run"
"""One fine-tuning run of the meta-dataset (:mod:`nasoa_lib.metadata.collect`)."""
