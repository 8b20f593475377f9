//! Inline SVG charts for the HTML report: line charts against cycles and
//! bar charts against birth epochs, each with labelled axes, ticks, a grid
//! and units. They draw what they are given; the figures come from the
//! [`Report`](crate::analysis::Report).

use std::fmt::Write as _;

use super::escape;

/// What a value axis counts.
#[derive(Clone, Copy)]
pub(super) enum Unit {
    /// Bytes (ticks in B, KiB, MiB or GiB).
    Bytes,
    /// A plain count (ticks with k, M, G).
    Count,
}

/// Ticks for an axis from 0 to `max`: the step, the divisor of the unit and
/// its name.
fn ticks(max: f64, unit: Unit) -> (Vec<f64>, f64, &'static str) {
    let (div, name) = match unit {
        Unit::Bytes => {
            let k = 1024.0_f64;
            if max >= k * k * k {
                (k * k * k, "GiB")
            } else if max >= k * k {
                (k * k, "MiB")
            } else if max >= k {
                (k, "KiB")
            } else {
                (1.0, "B")
            }
        }
        Unit::Count => {
            if max >= 1e9 {
                (1e9, "G")
            } else if max >= 1e6 {
                (1e6, "M")
            } else if max >= 1e3 {
                (1e3, "k")
            } else {
                (1.0, "")
            }
        }
    };
    let top = (max / div).max(1e-9);
    let raw = top / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| top / s <= 6.0)
        .unwrap_or(10.0 * mag);
    // Whole bytes and counts below the first unit.
    let step = if div == 1.0 { step.max(1.0) } else { step };
    let n = (top / step).ceil().max(1.0) as usize;
    ((0..=n).map(|i| i as f64 * step * div).collect(), div, name)
}

/// A tick's label.
fn tick_label(v: f64, div: f64, name: &str) -> String {
    let x = v / div;
    let whole = |v: f64| (v - v.round()).abs() < 1e-6;
    let digits = if whole(x) {
        0
    } else if whole(x * 10.0) {
        1
    } else {
        2
    };
    let sep = if matches!(name, "" | "k" | "M" | "G") {
        ""
    } else {
        " "
    };
    format!("{x:.digits$}{sep}{name}")
}

/// One line of a [`line_chart`].
pub(super) struct Line<'a> {
    pub(super) name: &'a str,
    pub(super) colour: &'a str,
    pub(super) values: Vec<Option<f64>>,
}

const W: f64 = 560.0;
const H: f64 = 250.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 42.0;

/// The frame of a chart: title, grid, ticks on both axes, axis titles.
/// Returns the SVG so far and the scales.
struct Frame {
    svg: String,
    x0: f64,
    x1: f64,
    ymax: f64,
    width: f64,
}

impl Frame {
    fn new(
        title: &str,
        width: f64,
        (x0, x1, x_title, x_unit): (f64, f64, &str, Unit),
        (ymax, y_title, y_unit): (f64, &str, Unit),
        class: &str,
    ) -> Self {
        let (yt, ydiv, yname) = ticks(ymax, y_unit);
        let ymax = yt.last().copied().unwrap_or(1.0).max(1e-9);
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg class=\"chart {class}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
             height=\"{H}\" viewBox=\"0 0 {width} {H}\" role=\"img\" aria-label=\"{t}\">\
             <text class=\"title\" x=\"{LEFT}\" y=\"16\">{t}</text>",
            t = escape(title)
        );
        let f = Frame {
            svg,
            x0,
            x1: if x1 > x0 { x1 } else { x0 + 1.0 },
            ymax,
            width,
        };
        let mut svg = f.svg.clone();
        for &v in &yt {
            let y = f.py(v);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                width - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                tick_label(v, ydiv, yname)
            );
        }
        let (xt, xdiv, xname) = ticks(f.x1 - f.x0, x_unit);
        for &v in &xt {
            let xv = f.x0 + v;
            if xv > f.x1 + 1e-9 {
                break;
            }
            let x = f.px(xv);
            let _ = write!(
                svg,
                "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y0:.1}\" y2=\"{y1:.1}\"/>\
                 <text class=\"tick\" x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\">{}</text>",
                tick_label(xv, xdiv, xname),
                y0 = H - BOTTOM,
                y1 = H - BOTTOM + 4.0,
                ty = H - BOTTOM + 16.0,
            );
        }
        let _ = write!(
            svg,
            "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{y:.1}\"/>\
             <text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text class=\"axis-title\" transform=\"translate(14 {:.1}) rotate(-90)\" \
             text-anchor=\"middle\">{}</text>",
            width - RIGHT,
            LEFT + (width - RIGHT - LEFT) / 2.0,
            H - 6.0,
            escape(x_title),
            TOP + (H - BOTTOM - TOP) / 2.0,
            escape(y_title),
            y = H - BOTTOM,
        );
        Frame { svg, ..f }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (self.width - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        H - BOTTOM - y / self.ymax * (H - BOTTOM - TOP)
    }
}

/// A line chart of `lines` against `x` (cycles), values in `unit`, with a
/// legend under it.
pub(super) fn line_chart(title: &str, x: &[f64], unit: Unit, lines: &[Line<'_>]) -> String {
    let ymax = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let x0 = x.first().copied().unwrap_or(0.0);
    let x1 = x.last().copied().unwrap_or(1.0);
    let y_title = match unit {
        Unit::Bytes => "bytes",
        Unit::Count => "count",
    };
    let mut f = Frame::new(
        title,
        W,
        (x0, x1, "cycles", Unit::Count),
        (ymax, y_title, unit),
        "lines",
    );
    for l in lines {
        let pts: Vec<String> = x
            .iter()
            .zip(&l.values)
            .filter_map(|(&xv, v)| v.map(|v| format!("{:.1},{:.1}", f.px(xv), f.py(v))))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let _ = write!(
            f.svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\">\
             <title>{}</title></polyline>",
            l.colour,
            pts.join(" "),
            escape(l.name)
        );
    }
    f.svg.push_str("</svg>");
    let mut s = String::from("<figure class=\"chart\">");
    s.push_str(&f.svg);
    s.push_str(&legend(
        lines
            .iter()
            .filter(|l| l.values.iter().any(Option::is_some))
            .map(|l| (l.name, l.colour)),
    ));
    s.push_str("</figure>");
    s
}

/// A legend: a swatch and a name per entry.
pub(super) fn legend<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::from("<figcaption class=\"legend\">");
    for (name, colour) in entries {
        let _ = write!(
            s,
            "<span><i style=\"background:{colour}\"></i>{}</span> ",
            escape(name)
        );
    }
    s.push_str("</figcaption>");
    s
}

/// The most bars a [`birth_chart`] draws: past this many epochs, each bar
/// covers several (their bytes added), so the page grows with the sites,
/// not with the epochs.
pub(super) const MAX_BARS: u32 = 120;

/// `columns` and `layers` with the columns grouped into at most
/// [`MAX_BARS`] bars of equal epoch spans (a column goes to the bar of its
/// first epoch).
fn bin<'a>(
    start: u32,
    end: u32,
    columns: &[(u32, u32)],
    layers: &[Layer<'a>],
) -> (Vec<(u32, u32)>, Vec<Layer<'a>>) {
    let span = end.saturating_sub(start).max(1);
    let width = span.div_ceil(MAX_BARS);
    if width <= 1 {
        let layers = layers
            .iter()
            .map(|l| Layer {
                bytes: l.bytes.clone(),
                ..*l
            })
            .collect();
        return (columns.to_vec(), layers);
    }
    let mut bars: Vec<(u32, u32)> = Vec::new();
    let mut of: Vec<usize> = Vec::with_capacity(columns.len());
    for &(first, last) in columns {
        let b0 = start + (first.saturating_sub(start) / width) * width;
        let bar = (b0, (b0 + width - 1).max(last));
        match bars.iter().position(|b| b.0 == bar.0) {
            Some(i) => {
                bars[i].1 = bars[i].1.max(bar.1);
                of.push(i);
            }
            None => {
                bars.push(bar);
                of.push(bars.len() - 1);
            }
        }
    }
    let layers = layers
        .iter()
        .map(|l| {
            let mut bytes = vec![0.0; bars.len()];
            for (c, &i) in of.iter().enumerate() {
                bytes[i] += l.bytes[c];
            }
            Layer { bytes, ..*l }
        })
        .collect();
    (bars, layers)
}

/// One layer of a [`birth_chart`]: a name, a colour and bytes per column.
pub(super) struct Layer<'a> {
    pub(super) name: &'a str,
    pub(super) colour: &'a str,
    pub(super) bytes: Vec<f64>,
}

/// Stacked bars of surviving bytes by birth epoch: `columns` are epoch
/// ranges (`first..=last`) on a linear epoch axis from `start` to `end`
/// (exclusive), `layers` stacked bottom up in each column; at most
/// [`MAX_BARS`] bars.
pub(super) fn birth_chart(
    title: &str,
    (start, end): (u32, u32),
    columns: &[(u32, u32)],
    layers: &[Layer<'_>],
    small: bool,
) -> String {
    let binned = bin(start, end, columns, layers);
    let (columns, layers) = (&binned.0[..], &binned.1[..]);
    let totals: Vec<f64> = (0..columns.len())
        .map(|c| layers.iter().map(|l| l.bytes[c].max(0.0)).sum())
        .collect();
    let ymax = totals.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let end = end.max(start + 1);
    let width = if small { 420.0 } else { W };
    let mut f = Frame::new(
        title,
        width,
        (f64::from(start), f64::from(end), "birth epoch", Unit::Count),
        (ymax, "surviving bytes", Unit::Bytes),
        "births",
    );
    for (c, &(first, last)) in columns.iter().enumerate() {
        let xa = f.px(f64::from(first));
        let xb = f.px(f64::from(last) + 1.0);
        let w = (xb - xa - 1.0).max(1.0);
        let mut base = 0.0;
        for l in layers {
            let v = l.bytes[c].max(0.0);
            if v <= 0.0 {
                continue;
            }
            let (ya, yb) = (f.py(base), f.py(base + v));
            let born = if first == last {
                format!("epoch {first}")
            } else {
                format!("epochs {first}..={last}")
            };
            // A chart of one layer names it in its title, not in each bar.
            let name = if layers.len() > 1 {
                format!("{}: ", escape(l.name))
            } else {
                String::new()
            };
            let _ = write!(
                f.svg,
                "<rect x=\"{xa:.1}\" y=\"{yb:.1}\" width=\"{w:.1}\" height=\"{:.1}\" \
                 fill=\"{}\"><title>{name}{} born in {born}</title></rect>",
                (ya - yb).max(0.5),
                l.colour,
                escape(&crate::render::human_bytes(v)),
            );
            base += v;
        }
    }
    f.svg.push_str("</svg>");
    let mut s = String::from("<figure class=\"chart\">");
    s.push_str(&f.svg);
    if layers.len() > 1 {
        s.push_str(&legend(layers.iter().map(|l| (l.name, l.colour))));
    }
    s.push_str("</figure>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_in_the_unit_of_the_largest() {
        let (t, div, name) = ticks(3.3 * 1024.0 * 1024.0, Unit::Bytes);
        assert_eq!(name, "MiB");
        assert_eq!(div, 1024.0 * 1024.0);
        let labels: Vec<String> = t.iter().map(|&v| tick_label(v, div, name)).collect();
        assert_eq!(labels, ["0 MiB", "1 MiB", "2 MiB", "3 MiB", "4 MiB"]);
        let (t, div, name) = ticks(1_000_000.0, Unit::Count);
        let labels: Vec<String> = t.iter().map(|&v| tick_label(v, div, name)).collect();
        assert_eq!(labels, ["0M", "0.2M", "0.4M", "0.6M", "0.8M", "1M"]);
        let (t, _, _) = ticks(7.0, Unit::Count);
        assert_eq!(t, [0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(tick_label(600.0000000001, 1e3, "k"), "0.6k");
    }

    #[test]
    fn many_epochs_are_grouped_into_at_most_max_bars() {
        let columns: Vec<(u32, u32)> = (0..1000).map(|e| (e, e)).collect();
        let layer = Layer {
            name: "site",
            colour: "#000",
            bytes: vec![2.0; 1000],
        };
        let (bars, layers) = bin(0, 1000, &columns, &[layer]);
        assert!(bars.len() <= MAX_BARS as usize, "{}", bars.len());
        assert_eq!(bars[0], (0, 8));
        assert_eq!(layers[0].bytes.iter().sum::<f64>(), 2000.0);
        let few: Vec<(u32, u32)> = (0..40).map(|e| (e, e)).collect();
        let layer = Layer {
            name: "site",
            colour: "#000",
            bytes: vec![1.0; 40],
        };
        assert_eq!(bin(0, 40, &few, &[layer]).0, few);
    }
}
