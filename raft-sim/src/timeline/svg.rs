//! The SVG drawing of one panel of the timeline.

use super::{
    Arrow, BAR_H, LANE_H, LEFT, Model, OpStatus, PLOT_W, STREAM_ARROWS_MAX, STRIP_H,
    VOTE_ARROWS_MAX, esc, secs, thin,
};
use std::fmt::Write as _;

/// The color legend, as HTML.
pub(super) const LEGEND: &str = "<p class=\"legend\">\
<span style=\"background:#c8c8c8\">follower</span>\
<span style=\"background:#fff3b0\">pre-candidate</span>\
<span style=\"background:#f5d000\">candidate</span>\
<span style=\"background:#3cb043\">leader</span>\
<span style=\"background:#6fa8dc\">learner</span>\
<span style=\"background:repeating-linear-gradient(45deg,#333 0 3px,#999 3px 6px);color:#fff\">down</span>\
<span style=\"background:repeating-linear-gradient(90deg,#555 0 2px,#ddd 2px 5px)\">paused</span>\
<span style=\"background:#fde2e2\">partition</span>\
&nbsp; arrows: <span style=\"color:#e67e00\">votes</span>\
<span style=\"color:#1f5fbf\">chunks</span><span style=\"color:#8fb8ef\">acks</span>\
<span style=\"color:#d00\">&#x2715; drop</span>\
&nbsp; thin line under a lane: applied index; \
client ops: <span style=\"background:#3cb043\">ok</span>\
<span style=\"background:#d9534f\">failed</span>\
<span style=\"background:#9b59b6\">unknown</span> \
&#9660; crash &#9650; restart &#9679; stream open &#x2715; stream close; hover for details</p>\n";

/// Shared patterns and arrowheads (ids are document-wide).
pub(super) const DEFS: &str = "<svg width=\"0\" height=\"0\" style=\"position:absolute\"><defs>\
<pattern id=\"down\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
<rect width=\"6\" height=\"6\" fill=\"#999\"/><rect width=\"3\" height=\"6\" fill=\"#333\"/></pattern>\
<pattern id=\"paused\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\">\
<rect width=\"5\" height=\"5\" fill=\"#ddd\"/><rect width=\"2\" height=\"5\" fill=\"#555\"/></pattern>\
<marker id=\"hv\" viewBox=\"0 0 6 6\" refX=\"6\" refY=\"3\" markerWidth=\"5\" markerHeight=\"5\" orient=\"auto\">\
<path d=\"M0,0L6,3L0,6z\" fill=\"#e67e00\"/></marker>\
<marker id=\"hc\" viewBox=\"0 0 6 6\" refX=\"6\" refY=\"3\" markerWidth=\"5\" markerHeight=\"5\" orient=\"auto\">\
<path d=\"M0,0L6,3L0,6z\" fill=\"#1f5fbf\"/></marker>\
</defs></svg>\n";

/// The time axis and lane geometry of one panel.
struct Frame {
    t0: u64,
    t1: u64,
}

impl Frame {
    fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.t0, self.t1);
        LEFT + (t - self.t0) as f64 / (self.t1 - self.t0) as f64 * PLOT_W
    }
    fn lane_top(i: usize) -> f64 {
        44.0 + i as f64 * LANE_H
    }
    fn lane_mid(i: usize) -> f64 {
        Frame::lane_top(i) + BAR_H / 2.0
    }
    fn overlaps(&self, a: u64, b: u64) -> bool {
        b >= self.t0 && a <= self.t1
    }
}

/// A tick step giving about ten ticks over `span` nanoseconds.
fn tick_step(span: u64) -> u64 {
    let mut base = 1_000u64;
    loop {
        for mult in [1, 2, 5] {
            if span / (base * mult) <= 12 {
                return base * mult;
            }
        }
        base *= 10;
    }
}

/// Appends one `<svg>` panel covering `[t0, t1]`; `messages` adds arrows, drops and stream markers.
pub(super) fn panel(h: &mut String, m: &Model, t0: u64, t1: u64, messages: bool) {
    let f = Frame {
        t0,
        t1: t1.max(t0 + 1),
    };
    let clients = m.client_lanes;
    let clients_top = Frame::lane_top(m.n) + 4.0;
    let height = clients_top + clients as f64 * 14.0 + 20.0;
    let width = LEFT + PLOT_W + 45.0;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\">"
    );
    let _ = writeln!(
        h,
        "<rect width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#fff\"/>"
    );
    axis(h, &f, height);
    partitions(h, m, &f, clients_top);
    let max_applied = m
        .applied
        .iter()
        .flatten()
        .map(|a| a.1)
        .max()
        .unwrap_or(0)
        .max(1);
    for i in 0..m.n {
        lane(h, m, &f, i, max_applied);
    }
    if messages {
        arrows(h, m, &f);
    }
    markers(h, m, &f, messages);
    client_lanes(h, m, &f, clients_top);
    failure_line(h, m, &f, height);
    h.push_str("</svg>\n");
}

/// The time axis: a tick line and label every round step.
fn axis(h: &mut String, f: &Frame, height: f64) {
    let step = tick_step(f.t1 - f.t0);
    let mut t = f.t0.div_ceil(step) * step;
    while t <= f.t1 {
        let x = f.x(t);
        let _ = writeln!(
            h,
            "<line x1=\"{x:.1}\" y1=\"18\" x2=\"{x:.1}\" y2=\"{:.0}\" stroke=\"#eee\"/>\
             <text x=\"{x:.1}\" y=\"14\" text-anchor=\"middle\">{:.3}s</text>",
            height - 16.0,
            t as f64 / 1e9
        );
        t += step;
    }
}

/// Partitions, as shaded bands behind everything, labeled with their groups.
fn partitions(h: &mut String, m: &Model, f: &Frame, clients_top: f64) {
    for (k, (a, b, label)) in m
        .partitions
        .iter()
        .filter(|p| f.overlaps(p.0, p.1))
        .enumerate()
    {
        let (xa, xb) = (f.x(*a), f.x(*b));
        let label_y = if k % 2 == 0 { 29.0 } else { 39.0 };
        let _ = writeln!(
            h,
            "<g><title>partition {} .. {}: {}</title><rect x=\"{xa:.1}\" y=\"20\" width=\"{:.1}\" \
             height=\"{:.0}\" fill=\"#f8c0c0\" fill-opacity=\"0.45\"/>\
             <text x=\"{:.1}\" y=\"{label_y}\" fill=\"#a00\">{}</text></g>",
            secs(*a),
            secs(*b),
            esc(label),
            (xb - xa).max(1.0),
            clients_top - 20.0,
            xa + 2.0,
            esc(label)
        );
    }
}

/// Crash and restart marks (and stream opens and closes with the messages).
fn markers(h: &mut String, m: &Model, f: &Frame, messages: bool) {
    for (t, i, kind, text) in m.markers.iter().filter(|k| f.overlaps(k.0, k.0)) {
        let stream = matches!(*kind, "open" | "close");
        if stream && !messages {
            continue;
        }
        let x = f.x(*t);
        let y = Frame::lane_top(*i);
        let shape = match *kind {
            "crash" => format!(
                "<path d=\"M{:.1},{:.1}l-5,-7h10z\" fill=\"#d00\"/>",
                x,
                y + 2.0
            ),
            "restart" => format!(
                "<path d=\"M{:.1},{:.1}l-5,7h10z\" fill=\"#080\"/>",
                x,
                y + BAR_H - 2.0
            ),
            "open" => format!(
                "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#1f5fbf\"/>",
                y + 3.0
            ),
            _ => format!(
                "<path d=\"M{:.1},{:.1}l5,5m0,-5l-5,5\" stroke=\"#000\" stroke-width=\"1.2\"/>",
                x - 2.5,
                y + 1.0
            ),
        };
        let _ = writeln!(
            h,
            "<g><title>{} n{} {}</title>{shape}</g>",
            secs(*t),
            i + 1,
            esc(text)
        );
    }
}

/// One lane per client with its operations colored by outcome.
fn client_lanes(h: &mut String, m: &Model, f: &Frame, clients_top: f64) {
    for c in 0..m.client_lanes {
        let y = clients_top + c as f64 * 14.0;
        let _ = writeln!(
            h,
            "<text x=\"4\" y=\"{:.1}\">client {}</text>",
            y + 10.0,
            c + 1
        );
    }
    for (lane, a, b, outcome, finished, text) in &m.ops {
        if !f.overlaps(*a, *b) {
            continue;
        }
        let (xa, xb) = (f.x(*a), f.x(*b));
        let color = match outcome {
            OpStatus::Ok => "#3cb043",
            OpStatus::Failed => "#d9534f",
            OpStatus::Unknown => "#9b59b6",
        };
        let opacity = if *finished { "1" } else { "0.45" };
        let _ = writeln!(
            h,
            "<rect x=\"{xa:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" fill=\"{color}\" \
             fill-opacity=\"{opacity}\" stroke=\"#fff\" stroke-width=\"0.3\"><title>{}</title></rect>",
            clients_top + *lane as f64 * 14.0 + 1.0,
            (xb - xa).max(1.0),
            esc(text)
        );
    }
}

/// A red line at the failure, if it falls in the window.
fn failure_line(h: &mut String, m: &Model, f: &Frame, height: f64) {
    if let Some((t, why)) = &m.failure {
        if f.overlaps(*t, *t) {
            let x = f.x(*t);
            let _ = writeln!(
                h,
                "<g><title>FAILURE at {}: {}</title><line x1=\"{x:.1}\" y1=\"18\" x2=\"{x:.1}\" \
                 y2=\"{:.0}\" stroke=\"#d00\" stroke-width=\"2\"/></g>",
                secs(*t),
                esc(why),
                height - 16.0
            );
        }
    }
}

/// One node's lane: role spans, term labels, down/paused spans and the applied-index strip.
fn lane(h: &mut String, m: &Model, f: &Frame, i: usize, max_applied: u64) {
    let top = Frame::lane_top(i);
    let _ = writeln!(
        h,
        "<g class=\"lane\" id=\"lane-n{}\"><text x=\"4\" y=\"{:.1}\">n{}</text>",
        i + 1,
        top + 13.0,
        i + 1
    );
    let roles = &m.roles[i];
    let mut last_label = f64::NEG_INFINITY;
    let mut labels = String::new();
    for (k, &(a, role, term)) in roles.iter().enumerate() {
        let b = roles.get(k + 1).map_or(m.end, |r| r.0);
        if !f.overlaps(a, b) || (b <= f.t0 && k + 1 < roles.len()) {
            continue;
        }
        let (xa, xb) = (f.x(a), f.x(b));
        let _ = writeln!(
            h,
            "<rect x=\"{xa:.1}\" y=\"{top:.1}\" width=\"{:.2}\" height=\"{BAR_H}\" fill=\"{}\">\
             <title>n{} {:?} term {} from {} to {}</title></rect>",
            (xb - xa).max(0.3),
            role.color(),
            i + 1,
            role,
            term,
            secs(a),
            secs(b)
        );
        if xa - last_label >= 18.0 {
            last_label = xa;
            let _ = writeln!(
                labels,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}{}</text>",
                xa + 1.0,
                top + 13.0,
                role.glyph(),
                term
            );
        }
    }
    for (spans, fill, what) in [
        (&m.down[i], "url(#down)", "down"),
        (&m.paused[i], "url(#paused)", "paused"),
    ] {
        for &(a, b) in spans.iter().filter(|s| f.overlaps(s.0, s.1)) {
            let (xa, xb) = (f.x(a), f.x(b));
            let _ = writeln!(
                h,
                "<rect x=\"{xa:.1}\" y=\"{top:.1}\" width=\"{:.2}\" height=\"{BAR_H}\" fill=\"{fill}\">\
                 <title>n{} {what} {} .. {}</title></rect>",
                (xb - xa).max(0.5),
                i + 1,
                secs(a),
                secs(b)
            );
        }
    }
    h.push_str(&labels);
    // Applied index as a step line, one point per pixel column at most.
    let base = top + BAR_H + STRIP_H;
    let y = |v: u64| base - v as f64 / max_applied as f64 * (STRIP_H - 1.0);
    let series = &m.applied[i];
    let start = series.iter().rev().find(|p| p.0 <= f.t0).map_or(0, |p| p.1);
    let mut pts = format!("{:.1},{:.1}", f.x(f.t0), y(start));
    let mut prev = (f.x(f.t0), y(start));
    let mut last_v = start;
    for &(t, v) in series.iter().filter(|p| p.0 > f.t0 && p.0 <= f.t1) {
        let x = f.x(t);
        if x - prev.0 < 1.0 && v >= last_v {
            last_v = v;
            continue;
        }
        let _ = write!(pts, " {x:.1},{:.1} {x:.1},{:.1}", prev.1, y(v));
        prev = (x, y(v));
        last_v = v;
    }
    let _ = write!(pts, " {:.1},{:.1}", f.x(f.t1), y(last_v));
    let _ = writeln!(
        h,
        "<polyline points=\"{pts}\" fill=\"none\" stroke=\"#555\" stroke-width=\"0.8\">\
         <title>n{} applied index (scale 0..{max_applied})</title></polyline>\
         <text x=\"{:.1}\" y=\"{base:.1}\" font-size=\"9\">{last_v}</text></g>",
        i + 1,
        LEFT + PLOT_W + 2.0
    );
}

/// Vote, chunk and ack arrows and dropped messages inside the panel.
fn arrows(h: &mut String, m: &Model, f: &Frame) {
    let kinds: [(&[Arrow], &str, f64, &str, usize); 3] = [
        (&m.acks, "#8fb8ef", 0.6, "", STREAM_ARROWS_MAX),
        (
            &m.chunks,
            "#1f5fbf",
            1.4,
            " marker-end=\"url(#hc)\"",
            STREAM_ARROWS_MAX,
        ),
        (
            &m.votes,
            "#e67e00",
            1.2,
            " marker-end=\"url(#hv)\"",
            VOTE_ARROWS_MAX,
        ),
    ];
    for (list, color, width, head, max) in kinds {
        let (kept, total) = thin(list, f.t0, f.t1, max);
        if kept.len() < total {
            let _ = writeln!(
                h,
                "<!-- {} of {total} arrows drawn ({color}) -->",
                kept.len()
            );
        }
        for a in kept {
            let _ = writeln!(
                h,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" \
                 stroke-width=\"{width}\"{head}><title>n{}-&gt;n{} {} .. {} {}</title></line>",
                f.x(a.sent),
                Frame::lane_mid(a.from),
                f.x(a.recv),
                Frame::lane_mid(a.to),
                a.from + 1,
                a.to + 1,
                secs(a.sent),
                secs(a.recv),
                esc(&a.text)
            );
        }
    }
    for (t, i, text) in m.drops.iter().filter(|d| f.overlaps(d.0, d.0)) {
        let (x, y) = (f.x(*t), Frame::lane_mid(*i));
        let _ = writeln!(
            h,
            "<g><title>{} n{} drop {}</title><path d=\"M{:.1},{:.1}l6,6m0,-6l-6,6\" \
             stroke=\"#d00\" stroke-width=\"1.5\"/></g>",
            secs(*t),
            i + 1,
            esc(text),
            x - 3.0,
            y - 3.0
        );
    }
}
