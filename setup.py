"""Installs the EyeOCT packages: eyeoct (domain), ldm (latent diffusion), cldm (conditioning), the shipped
configs (the top-level configs/ folder, installed as package data eyeoct/configs/) and the console commands."""
from setuptools import find_packages, setup

COMMANDS = {
    "eyeoct-train-ae": "train_ae",
    "eyeoct-train-dm": "train_dm",
    "eyeoct-infer": "infer",
    "eyeoct-evaluate": "evaluate",
    "eyeoct-baselines": "baselines",
    "eyeoct-prepare-data": "prepare_data",
    "eyeoct-make-phantom": "make_phantom",
    "eyeoct-demo": "demo",
}

setup(
    name="eyeoct",
    version="0.1.0",
    description="Colour fundus photograph to six OCT B-scans with latent diffusion",
    packages=find_packages(include=["eyeoct", "eyeoct.*", "ldm", "ldm.*", "cldm", "cldm.*"]) + ["eyeoct.configs"],
    package_dir={"eyeoct.configs": "configs"},  # the repository keeps configs/ at the top level
    package_data={"eyeoct.configs": ["*.yaml", "*/*.yaml"]},
    entry_points={"console_scripts": [f"{name}=eyeoct.commands.{module}:main" for name, module in COMMANDS.items()]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "pytorch-lightning>=2.1,<3",
        "omegaconf>=2.3",
        "einops>=0.7",
        "open_clip_torch>=2.24",
        "numpy>=1.24",
        "pandas>=2.0",
        "pillow>=10.0",
        "scikit-image>=0.22",
        "scipy>=1.10",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
        "safetensors>=0.4",
        "tqdm>=4.66",
        "pyyaml>=6.0",
    ],
    extras_require={"test": ["pytest>=7.4"]},
)
