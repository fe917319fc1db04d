"""Scout: a retrieval-grounded search assistant on a small, cheap model.

>>> from scout import Scout
>>> sorted(__all__)[:3]
['Answer', 'Citation', 'Document']
"""

from scout.api import Scout
from scout.config import IndexConfig
from scout.errors import ScoutError
from scout.ingest.pipeline import IngestReport
from scout.types import Answer, Citation, Document, Hit, Usage

__all__ = ["Answer", "Citation", "Document", "Hit", "IndexConfig", "IngestReport", "Scout", "ScoutError", "Usage"]
__version__ = "0.1.0"
