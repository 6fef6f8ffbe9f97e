"""One upload step for everything hf_vq pushes: create the repository, upload a folder in one commit.

Connection failures become a :class:`~hf_vq.utils.errors.HubUnreachableError` that says how
to log in or work offline, instead of an HTTP client's traceback.
"""

import os

from .errors import HubUnreachableError, network_errors


def upload_folder_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    allow_patterns: list | None = None,
):
    """Create ``repo_id`` if needed and upload ``folder`` (``allow_patterns`` only) as one commit."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        created = api.create_repo(repo_id, private=private, exist_ok=True)
        # The Hub resolves a bare name to the user's namespace; upload to what it created.
        repo_id = created.repo_id if isinstance(getattr(created, "repo_id", None), str) else repo_id
        return api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), allow_patterns=allow_patterns, commit_message=commit_message,
            commit_description=commit_description, revision=revision, create_pr=create_pr,
        )
    except network_errors() as error:
        raise HubUnreachableError(
            f"The Hugging Face Hub cannot be reached ({type(error).__name__}: {error}). Check the network, log in "
            "with `hf auth login` (or set HF_TOKEN), or prepare the folder without uploading "
            "(`hf-vq push ... --dry-run`)."
        ) from error


__all__ = ["upload_folder_to_hub"]
