"""The MNIST VAE task (Shumailov et al. 2024; Gerstgrasser et al. 2024)."""

from collapselab.tasks.mnist_vae.task import MnistVaeTask

__all__ = ["MnistVaeTask"]
