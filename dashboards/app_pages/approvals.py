"""Approval queue: a pending effect's input video and every provider's output side by side,
with quality vector, cost and margin; the decision goes through
resources/services/approvals.decide, and the approval sensor publishes (or refunds) from
there."""

import streamlit as st

from dashboards import state, widgets
from dashboards.data import fmt_pct, fmt_usd, quality_summary
from resources.services.approvals import decide

ctx = widgets.page("Approval queue")
widgets.source_note(ctx, "Approval requests")
COLUMNS = 4  # input + 3 outputs per row: each still wide enough to judge a 320-px proxy

pending = state.pending_approvals(ctx)
if pending.is_empty():
    widgets.empty("Nothing waits for approval.", "Each video's best result lands here after evaluation (M9).")
    st.stop()

labels = [
    f"{r['effect_type']} by {r['provider_id']} · video {r['video_id'][:10]} · {r['requested_at']:%Y-%m-%d %H:%M} UTC"
    for r in pending.iter_rows(named=True)
]
st.caption(f"{pending.height} pending, oldest first.")
pick = st.selectbox("Request", range(pending.height), format_func=labels.__getitem__, key="approval_pick")
item = state.approval_item(ctx, pending.row(pick, named=True))


def _video(key: str | None) -> None:
    payload = state.media_bytes(ctx, key)
    if payload is None:
        st.caption("(video not in the media store)")
    else:
        st.video(payload, format="video/mp4", loop=True, muted=True)


def _output(o: dict) -> None:
    with st.container(border=True):
        badge = ":material/emoji_events: " if o["winner"] else ""
        st.markdown(
            f"{badge}**{o['provider_id']}** · {o['effect_type']} · rank {o['rank'] or '—'}  \n"
            f"`{o['selection']}` · {o['status']}"
            + ("" if o["gate_passed"] in (True, None) else f" · gate failed: {o['gate_failures']}")
        )
        _video(o["output_key"])
        st.markdown(f"Cost **{fmt_usd(o['cost_usd'])}** · Margin **{fmt_pct(o['margin'], 2)}**")
        st.markdown(quality_summary(o))


with st.container(border=True):
    st.subheader(f"{item.effect_type} — proposed: {item.provider_id}")
    st.caption(f"Video {item.video_id} of user {item.user_id or '—'}; approval {item.approval_id}.")
    widgets.decision_controls(
        f"approval_{item.approval_id}",
        f"Approval {item.approval_id}",
        lambda decision, reason: decide(ctx.lake, ctx.store, item.approval_id, decision, ctx.admin, reason),
    )

# Each effect type's outputs in rows, the input video first in every row, so each output
# plays beside what it was made from.
for effect_type, group in item.outputs.group_by("effect_type", maintain_order=True):
    st.markdown(f"**{effect_type[0]}** — {group.height} output{'s' if group.height > 1 else ''}")
    rows = list(group.iter_rows(named=True))
    for start in range(0, len(rows), COLUMNS - 1):
        first, *rest = st.columns(COLUMNS)
        with first, st.container(border=True):
            st.markdown("**Input**  \nthe proxy every provider got")
            _video(item.input_key)
        # The last row may hold fewer outputs than columns: its spare columns stay empty.
        for col, o in zip(rest, rows[start : start + COLUMNS - 1], strict=False):
            with col:
                _output(o)
