"""The Kubernetes API client, from a kubeconfig or from the pod's ServiceAccount in a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from xds_server.errors import SourceUnavailable

if TYPE_CHECKING:  # kubernetes-asyncio costs about 40 MB: imported in Kubernetes mode only
    from kubernetes_asyncio import client


async def api_client(kubeconfig: Path | None) -> client.ApiClient:
    """A client for the API server ``kubeconfig`` names, or (``None``) the cluster pyistiod
    runs in. Raises ``SourceUnavailable`` saying why it cannot be made."""
    import yaml
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.config.config_exception import ConfigException

    where = str(kubeconfig) if kubeconfig else "in-cluster config"
    if kubeconfig is not None and not kubeconfig.is_file():
        raise SourceUnavailable(where, "no such kubeconfig file")
    try:
        if kubeconfig is not None:
            return await config.new_client_from_config(str(kubeconfig))
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    except (yaml.YAMLError, TypeError) as err:  # no YAML, or YAML but not a mapping
        said = " ".join(str(err).split())  # a YAML error spans lines: one line here
        raise SourceUnavailable(where, f"is not a kubeconfig file: {said}") from err
    except (ConfigException, OSError, ValueError, KeyError) as err:
        raise SourceUnavailable(where, f"cannot load the Kubernetes client config: {err}") from err
