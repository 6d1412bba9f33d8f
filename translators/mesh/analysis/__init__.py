"""What ``istioctl analyze`` would report: valid config that may not do what was meant."""

from translators.mesh.analysis.virtual_services import analyze

__all__ = ["analyze"]
