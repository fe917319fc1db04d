"""The chat app's look: CSS, and the page script that makes citation links open their passage."""

from __future__ import annotations

CSS = """
.gradio-container { max-width: 1380px !important; margin: 0 auto; }
.scout-header { display: flex; align-items: baseline; gap: 16px; padding: 6px 2px 2px; flex-wrap: wrap; }
.scout-brand { font-size: 1.55rem; font-weight: 700; letter-spacing: -0.01em; color: var(--body-text-color); }
.scout-logo { color: var(--color-accent); }
.scout-subtitle { color: var(--body-text-color-subdued); font-size: 0.95rem; }
.scout-subtitle code { font-size: 0.88rem; }

a.scout-cite {
  display: inline-block; padding: 0 5px; margin: 0 1px; border-radius: 6px; font-size: 0.8em; font-weight: 600;
  line-height: 1.5; text-decoration: none !important; vertical-align: baseline;
  background: var(--color-accent-soft); color: var(--color-accent) !important; border: 1px solid var(--color-accent);
}
a.scout-cite:hover { background: var(--color-accent); color: white !important; }
.scout-answer-meta { display: block; color: var(--body-text-color-subdued); font-size: 0.78rem; margin-top: 2px; }
.scout-error { border-left: 3px solid #d9534f; padding: 6px 10px; background: rgba(217, 83, 79, 0.08); border-radius: 4px; }

.scout-passage {
  border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 12px 14px;
  background: var(--background-fill-secondary); min-height: 96px;
}
.scout-passage-empty p { color: var(--body-text-color-subdued); margin: 6px 0 0; font-size: 0.9rem; }
.scout-passage-head { font-size: 1rem; margin-bottom: 2px; }
.scout-passage-where { color: var(--body-text-color-subdued); font-size: 0.8rem; margin-bottom: 6px; }
.scout-passage-text {
  margin: 6px 0 8px; padding: 8px 12px; border-left: 3px solid var(--color-accent); background: var(--background-fill-primary);
  font-size: 0.9rem; line-height: 1.45; max-height: 260px; overflow-y: auto; white-space: pre-wrap;
}
.scout-chips { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }
.scout-chip {
  font-size: 0.72rem; padding: 1px 7px; border-radius: 999px; background: var(--background-fill-primary);
  border: 1px solid var(--border-color-primary); color: var(--body-text-color-subdued); font-family: var(--font-mono);
}
.scout-chip-fused { color: var(--color-accent); border-color: var(--color-accent); }
.scout-entity-row { display: flex; align-items: baseline; gap: 8px; margin-top: 6px; }
.scout-entity { font-weight: 600; font-size: 0.85rem; white-space: nowrap; }
.scout-linked { font-family: var(--font); }
.scout-withheld { margin-top: 4px; font-size: 0.85rem; color: var(--body-text-color-subdued); }
.scout-withheld summary { cursor: pointer; }

.scout-source { padding: 9px 2px 10px; border-bottom: 1px solid var(--border-color-primary); }
.scout-source:last-child { border-bottom: none; }
.scout-source-head { display: flex; align-items: center; gap: 6px; }
.scout-source-title { font-weight: 600; font-size: 0.9rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.scout-cited {
  margin-left: auto; font-size: 0.68rem; text-transform: uppercase; letter-spacing: 0.04em; color: var(--color-accent);
  font-weight: 700;
}
.scout-source-preview { font-size: 0.83rem; color: var(--body-text-color); line-height: 1.4; }
.scout-empty { color: var(--body-text-color-subdued); font-size: 0.9rem; padding: 8px 2px; }
.scout-related { margin-top: 12px; }
.scout-related ul { margin: 4px 0 0 18px; padding: 0; font-size: 0.88rem; }

.scout-stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; }
.scout-stat {
  display: flex; flex-direction: column; padding: 8px 10px; border-radius: 8px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary);
}
.scout-stat-value { font-size: 1.15rem; font-weight: 700; }
.scout-stat-label { font-size: 0.75rem; color: var(--body-text-color-subdued); }
"""

CITATION_SCRIPT = """
window.scoutOpenCitation = (reference) => trigger('click', {citation: reference});
if (!window.scoutCitationListener) {
  window.scoutCitationListener = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest ? event.target.closest('a[href^="#cite-"]') : null;
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    window.scoutOpenCitation(link.getAttribute('href').slice('#cite-'.length));
  }, true);
}
"""
"""Runs once in the passage panel: a click on any `#cite-<query id>-<n>` link, in the chat or the
sources list, fires the panel's click event with the reference, and the server fills the panel."""

RELATED_SCRIPT = """
element.addEventListener('click', (event) => {
  const link = event.target.closest ? event.target.closest('a.scout-related-query') : null;
  if (!link) return;
  event.preventDefault();
  trigger('click', {query: link.textContent});
});
"""
"""Runs in the related panel: a click on an earlier query puts it into the question box."""
