"""nasoa_lib: the library behind the nasoa-study notebooks.

One module per concept of the papers (see README): ``data``, ``store``, ``space``, ``builder``,
``models``, ``measure``, ``train``, ``finetune``, ``report``, ``cli``; later ``search``, ``zoo``,
``metafeatures``, ``online``, ``generator``, ``hpo``, ``estimate``, ``nss``.
"""

__version__ = "0.1.0"
