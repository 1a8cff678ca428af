"""Corpus builders: one module per corpus (download, verify, Kaldi data dirs), apart from the
generic stage tools in ``espnet_mamba.recipe`` (data_dir, tokens, score, ...).

``download`` holds what every downloading corpus shares (resumable HTTP, checksums,
extract-once). Corpora: ``an4``, ``librispeech`` (and its ``mini_librispeech`` split), ``fsdd``
(connected digits from FSDD, with ``synthetic_digits`` voices for training), ``synth_commands``
(the demo's corpus, synthesized here with espeak-ng and flite). Each runs as
``python -m espnet_mamba.recipe.corpora.NAME``, called by a recipe's ``local/data.sh``.
"""
