"""espnet-mamba: Mamba (selective state-space) ASR models and recipes for ESPnet."""

from setuptools import find_packages, setup

# Pinned, tested together (2026-11). Why each pin:
# - espnet 202511 is the newest release; its wheel has no recipes (we bring ours).
# - espnet2.tasks.asr imports torchaudio; torchaudio 2.11.0 is the newest on PyPI
#   and requires torch==2.11.0 exactly. Pinning torch here also stops pip from
#   pulling the newest torch when it resolves espnet's open-ended "torch>=1.11".
# - espnet itself pins sentencepiece==0.2.0 and setuptools<74.
INSTALL_REQUIRES = [
    "espnet==202511",
    "torch==2.11.0",
    "torchaudio==2.11.0",
    "sentencepiece==0.2.0",
    "setuptools<74",
    "kaldiio==2.18.1",
    "soundfile==0.14.0",
    "jiwer==4.0.0",
    "tensorboard==2.21.0",
    "matplotlib==3.11.2",  # ESPnet plots attention weights during training; our compare plots
    "numpy>=2.0,<3",
]

EXTRAS = {
    # CUDA kernels: sdists only on PyPI. Build them with `tools/install.sh --cuda`
    # (needs nvcc and a GPU; uses MAMBA_FORCE_BUILD and no build isolation).
    "cuda": ["mamba-ssm==2.3.2.post1", "causal-conv1d==1.7.0"],
    "test": ["pytest==9.2.0"],
}

setup(
    name="espnet_mamba",
    version="0.1.0",
    description="Mamba encoders/decoders and stage-numbered recipes for ESPnet ASR",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["espnet_mamba", "espnet_mamba.*"]),
    # the compiled CPU kernels are built from this source at first use (ops/cpu_kernels.py)
    package_data={"espnet_mamba.ops": ["csrc/*.c"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
)
