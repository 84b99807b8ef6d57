"""The molecule conformer diffusion task (Gerstgrasser et al. 2024's GeoDiff experiment at CPU scale)."""

from collapselab.tasks.conformer_diffusion.task import ConformerDiffusionTask

__all__ = ["ConformerDiffusionTask"]
