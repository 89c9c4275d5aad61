"""`models pick`'s answer as text (the path through the tree, then why) and as JSON."""

from __future__ import annotations

from tollgate.costlab.pick import Pick


def render_pick(pick: Pick) -> str:
    width = max(len(step.question) for step in pick.path)
    lines = ["Decision path:"]
    for step in pick.path:
        answer = "yes" if step.answer else "no"
        if step.node == pick.node and step.answer:
            answer += f"  -> {pick.model.name}"
        detail = f"  ({step.detail})" if step.detail else ""
        lines.append(f"  {step.question.ljust(width)}  {answer}{detail}")
    lines += ["", f"Pick: {pick.model.name} ({pick.model.id})", "Why:"]
    lines += [f"  - {reason}" for reason in pick.reasons]
    for node, model in pick.also:
        lines.append(f"Also: {node.replace('_', ' ')} -> {model.name} ({model.id})")
    for warning in pick.warnings:
        lines.append(f"Note: {warning}")
    return "\n".join(lines)


def pick_json(pick: Pick) -> dict:
    return {
        "model": pick.model.id,
        "name": pick.model.name,
        "node": pick.node,
        "guide_model": pick.guide_model.id if pick.guide_model else pick.model.id,
        "path": [
            {"node": s.node, "question": s.question, "answer": s.answer, "detail": s.detail or None}
            for s in pick.path
        ],
        "reasons": list(pick.reasons),
        "also": [{"node": node, "model": model.id} for node, model in pick.also],
        "warnings": list(pick.warnings),
    }
