//! The HTML report's icicle graph (a flame graph drawn top down): the
//! surviving bytes born during the series at the last snapshot, by call
//! stack from the outermost frame down to the allocating line, from the
//! report's survivor profile. Each frame is an SVG rectangle whose width is
//! its bytes; a search box marks the frames whose name matches and says
//! what share of the bytes they hold; a click zooms into a frame. The
//! script is inline, and the graph reads without it.

use std::fmt::Write as _;

use super::escape;
use alloc_snapshot::trim;

use crate::analysis::{HashMap, Report};
use crate::render::human_bytes;

/// Frames narrower than this share of the total are left out (their bytes
/// stay in their parent's width).
const MIN_SHARE: f64 = 0.001;
const WIDTH: f64 = 1100.0;
const ROW: f64 = 17.0;

/// Whose code a frame is, for its colour.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Own,
    Dependency,
    Other,
}

impl Kind {
    fn of(f: &alloc_snapshot::Frame) -> Self {
        if trim::is_own_frame(f) {
            Kind::Own
        } else if trim::is_user_frame(f) {
            Kind::Dependency
        } else {
            Kind::Other
        }
    }
}

struct Node {
    name: String,
    kind: Kind,
    bytes: f64,
    children: Vec<usize>,
    index: HashMap<String, usize>,
}

fn node(name: String, kind: Kind) -> Node {
    Node {
        name,
        kind,
        bytes: 0.0,
        children: Vec::new(),
        index: HashMap::default(),
    }
}

/// The icicle graph, or `None` when no survivor born during the series has
/// a stack: the tree of frames, laid out depth first.
pub(super) fn flame(r: &Report) -> Option<String> {
    let nodes = tree(r);
    let total = nodes[0].bytes;
    if total <= 0.0 {
        return None;
    }
    // Lay out depth first: (node, x share, depth).
    let mut out = String::new();
    let mut depth_max = 0usize;
    let mut todo = vec![(0usize, 0.0_f64, 0usize)];
    let mut rects = String::new();
    while let Some((i, x, depth)) = todo.pop() {
        let n = &nodes[i];
        let w = n.bytes / total;
        depth_max = depth_max.max(depth);
        rect(&mut rects, n, i == 0, x, w, depth);
        let mut cx = x;
        let mut kids: Vec<usize> = n.children.clone();
        kids.sort_by(|&a, &b| nodes[a].name.cmp(&nodes[b].name));
        let mut next = Vec::new();
        for k in kids {
            let kw = nodes[k].bytes / total;
            if kw >= MIN_SHARE {
                next.push((k, cx, depth + 1));
            }
            cx += kw;
        }
        todo.extend(next.into_iter().rev());
    }
    let height = (depth_max + 1) as f64 * ROW;
    let _ = write!(
        out,
        "<div class=\"flame\" id=\"flame\"><div class=\"flame-bar\"><label>search \
         <input id=\"flame-search\" type=\"search\" placeholder=\"function or file\"></label> \
         <button id=\"flame-reset\" type=\"button\">reset zoom</button> \
         <span id=\"flame-match\"></span></div>\
         <svg id=\"flame-svg\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" data-total=\"{total:.0}\">\
         {rects}</svg></div>\n<script>{SCRIPT}</script>\n"
    );
    Some(out)
}

/// The tree of frames of the survivors born during the series, from the
/// outermost frame (under the root, node 0) to the allocating line, each
/// node with the bytes under it.
fn tree(r: &Report) -> Vec<Node> {
    let p = &r.profile;
    let mut bytes = vec![0.0_f64; p.stacks.len()];
    for e in &p.entries {
        if e.epoch >= r.start_epoch && e.epoch < r.end_epoch {
            bytes[e.stack] += e.bytes;
        }
    }
    let mut nodes = vec![node(
        "all survivors born during the series".into(),
        Kind::Other,
    )];
    for (stack, &b) in p.stacks.iter().zip(&bytes) {
        if b <= 0.0 {
            continue;
        }
        nodes[0].bytes += b;
        let frames = stack.shown_frames();
        let mut at = 0;
        for (depth, f) in frames.iter().rev().enumerate() {
            // The allocating frame by its line, so that two lines of one
            // function are two frames; the others by function.
            let name = match &f.function {
                Some(func) if depth + 1 < frames.len() => func.clone(),
                _ => f.label(),
            };
            let next = match nodes[at].index.get(&name) {
                Some(&i) => i,
                None => {
                    let i = nodes.len();
                    nodes.push(node(name.clone(), Kind::of(f)));
                    nodes[at].children.push(i);
                    nodes[at].index.insert(name, i);
                    i
                }
            };
            nodes[next].bytes += b;
            at = next;
        }
    }
    nodes
}

/// One node's rectangle, at `x` (a share of the width), `w` wide, at
/// `depth`.
fn rect(rects: &mut String, n: &Node, root: bool, x: f64, w: f64, depth: usize) {
    let colour = match (root, n.kind) {
        (true, _) => "#bbb".to_string(),
        (_, Kind::Own) => warm(&n.name),
        (_, Kind::Dependency) => "#8fb4d9".to_string(),
        _ => "#cfcfcf".to_string(),
    };
    let _ = write!(
        rects,
        "<g class=\"f\" data-x=\"{x:.6}\" data-w=\"{w:.6}\" data-d=\"{depth}\">\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text><title>{} \u{2014} {} ({:.1}%)</title></g>",
        x * WIDTH,
        depth as f64 * ROW,
        (w * WIDTH - 0.5).max(0.5),
        ROW - 1.0,
        x * WIDTH + 3.0,
        depth as f64 * ROW + ROW - 5.0,
        escape(&fit(&n.name, w * WIDTH)),
        escape(&n.name),
        escape(&human_bytes(n.bytes)),
        100.0 * w,
    );
}

/// A name cut to the characters that fit `px` pixels (about 6.5 a
/// character at the graph's font size).
fn fit(name: &str, px: f64) -> String {
    let n = ((px - 6.0) / 6.5).floor().max(0.0) as usize;
    let count = name.chars().count();
    if n < 3 {
        String::new()
    } else if count <= n {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(n - 1).collect();
        s.push('…');
        s
    }
}

/// A warm colour chosen by the name, so a function keeps its colour.
fn warm(name: &str) -> String {
    let h = name.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    let r = 220 + (h % 35);
    let g = 110 + ((h >> 8) % 90);
    let b = 40 + ((h >> 16) % 40);
    format!("rgb({r},{g},{b})")
}

/// Search and zoom: the frames laid out by their `data-x`/`data-w` shares.
const SCRIPT: &str = r#"(function(){
var svg=document.getElementById('flame-svg');if(!svg)return;
var W=+svg.getAttribute('width'),gs=[].slice.call(svg.querySelectorAll('g.f'));
var names=gs.map(function(g){return g.querySelector('title').textContent.split(' \u2014 ')[0];});
function place(x0,w0,d0){gs.forEach(function(g,i){var x=(+g.dataset.x-x0)/w0,w=+g.dataset.w/w0,d=+g.dataset.d;
var r=g.querySelector('rect'),t=g.querySelector('text');
if(x+w<=1e-9||x>=1-1e-9||w<=0){g.style.display='none';return;}
var a=Math.max(0,x),b=Math.min(1,x+w);if(d<d0&&!(a<=0&&b>=1)){g.style.display='none';return;}
g.style.display='';r.setAttribute('x',(a*W).toFixed(1));r.setAttribute('width',Math.max(0.5,(b-a)*W-0.5).toFixed(1));
t.setAttribute('x',(a*W+3).toFixed(1));var n=Math.floor(((b-a)*W-6)/6.5),s=names[i];
t.textContent=n<3?'':(s.length<=n?s:s.slice(0,n-1)+'\u2026');});}
gs.forEach(function(g){g.addEventListener('click',function(){place(+g.dataset.x,+g.dataset.w,+g.dataset.d);});});
document.getElementById('flame-reset').addEventListener('click',function(){place(0,1,0);});
var input=document.getElementById('flame-search'),out=document.getElementById('flame-match');
input.addEventListener('input',function(){var q=input.value.toLowerCase(),m=0,covered=[];
gs.forEach(function(g,i){var hit=q&&names[i].toLowerCase().indexOf(q)>=0;g.classList.toggle('hit',!!hit);
if(hit){var x=+g.dataset.x,w=+g.dataset.w;if(!covered.some(function(c){return x>=c[0]-1e-9&&x+w<=c[1]+1e-9;})){covered.push([x,x+w]);m+=w;}}});
out.textContent=q?('matched '+(100*m).toFixed(1)+'% of the bytes'):'';});
if(location.hash.indexOf('#search=')===0){input.value=decodeURIComponent(location.hash.slice(8));
input.dispatchEvent(new Event('input'));}
})();"#;
