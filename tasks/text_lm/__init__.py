"""The byte-level language-model task (Gerstgrasser et al. 2024, Sec. 3)."""

from collapselab.tasks.text_lm.task import TextLMTask

__all__ = ["TextLMTask"]
