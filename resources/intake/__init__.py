"""The ways an upload arrives besides a direct multipart POST: presigned URLs (``signing``)
and links to a video on a social platform (``ssrf``, ``fetch``, ``link``); ``acceptance``
holds the checks every arrival passes before it becomes an upload row."""
