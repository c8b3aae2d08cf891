"""ipywidgets panels for mmkit (core widgets only; works on ipywidgets 7.7 and 8).

Each panel is a VBox subclass: build it, display it, and drive it from code in tests.
"""
from .annotation import AnnotationPanel
from .attention_explorer import AttentionExplorer
from .caption_app import CaptionApp
from .finetune import FinetunePanel
from .fusion_lab import FusionLab
from .panels import CaptionPanel, RetrievalPanel, VQAPanel, ZeroShotPanel
from .picker import ImagePicker
from .video import VideoPanel

__all__ = ["AnnotationPanel", "AttentionExplorer", "CaptionApp", "CaptionPanel", "FinetunePanel", "FusionLab", "ImagePicker", "RetrievalPanel",
           "VQAPanel", "VideoPanel", "ZeroShotPanel"]
