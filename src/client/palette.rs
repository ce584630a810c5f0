//! Nick colors that stay readable on dark and light terminals alike.
//!
//! How the palette was chosen (docs/user-guide.md says it too): WCAG 2.x asks for a
//! contrast ratio of 4.5:1 for text, (L1 + 0.05) / (L2 + 0.05) with L the relative
//! luminance of each color. Against white that needs L ≤ 0.183, against black L ≥ 0.175:
//! every color here has a relative luminance in that narrow band, at ten hues from amber
//! to raspberry, each as saturated as the band allows, and none within 30° of red, the
//! color of `!!!` errors. Against a dark gray such as #1e1e1e no color reaches 4.5:1
//! while keeping 4.5:1 against white (the best possible is about 4.06:1); these reach
//! about 3.6:1 there. The unit tests compute all of it from the RGB values.
//!
//! The colors are 24-bit, sent as such when the terminal says it takes them (`COLORTERM`
//! is `truecolor` or `24bit`, as VTE, kitty, Alacritty, iTerm2, WezTerm and Windows
//! Terminal set it). Otherwise each has a stand-in from the xterm 256-color cube, whose
//! colors every such terminal shows with the same RGB: only four of the cube's colors
//! (29, 63, 98, 163) are in the band and not red, so there the ten hues share four.

/// One nick color: its RGB, and the xterm 256-color index shown without 24-bit color.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NickColor {
    pub rgb: (u8, u8, u8),
    pub xterm: u8,
}

impl NickColor {
    /// The SGR parameters that set this color as the foreground (`38;2;R;G;B` or
    /// `38;5;N`).
    pub fn sgr(&self, truecolor: bool) -> String {
        let (r, g, b) = self.rgb;
        if truecolor { format!("38;2;{r};{g};{b}") } else { format!("38;5;{}", self.xterm) }
    }
}

const fn color(rgb: (u8, u8, u8), xterm: u8) -> NickColor {
    NickColor { rgb, xterm }
}

/// The nick colors, by hue (see the module's text for how they were picked).
pub const NICK_PALETTE: &[NickColor] = &[
    color((171, 100, 0), 163), // 35°, amber
    color((116, 122, 40), 29), // 65°, olive
    color((38, 135, 5), 29),   // 105°, green
    color((0, 135, 90), 29),   // 160°, sea green
    color((2, 127, 168), 29),  // 195°, cerulean
    color((33, 107, 255), 63), // 220°, blue
    color((117, 90, 250), 63), // 250°, indigo
    color((169, 48, 255), 98), // 275°, violet
    color((207, 0, 207), 163), // 300°, magenta
    color((227, 0, 132), 163), // 325°, raspberry
];

/// Whether the terminal takes 24-bit colors, as `COLORTERM` says (`truecolor`,
/// `24bit`; the convention terminals follow, there being no terminfo entry for it).
pub fn truecolor() -> bool {
    std::env::var("COLORTERM").is_ok_and(|v| v == "truecolor" || v == "24bit")
}

/// A stable color for `nick`: FNV-1a over its [`crate::nick::key`], so one person has
/// one color however the nick is written, in every session and on every machine (std's
/// hasher promises neither).
pub fn nick_color(nick: &str) -> NickColor {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in crate::nick::key(nick).bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    NICK_PALETTE[hash as usize % NICK_PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2.x relative luminance of an sRGB color.
    fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    }

    /// WCAG 2.x contrast ratio between two colors (1 to 21).
    fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// The RGB of an xterm 256-color cube or gray index (16–255), as xterm defines it.
    fn xterm_rgb(index: u8) -> (u8, u8, u8) {
        const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
        match index {
            16..=231 => {
                let i = usize::from(index - 16);
                (LEVELS[i / 36], LEVELS[i / 6 % 6], LEVELS[i % 6])
            }
            232.. => {
                let gray = 8 + 10 * (index - 232);
                (gray, gray, gray)
            }
            _ => panic!("{index} is one of the 16 colors a theme sets"),
        }
    }

    /// Hue in degrees (0 = red), and saturation (0 to 1) as HSV has them.
    fn hue((r, g, b): (u8, u8, u8)) -> (f64, f64) {
        let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        let chroma = max - min;
        if chroma == 0.0 {
            return (0.0, 0.0);
        }
        let sector = if max == r {
            ((g - b) / chroma).rem_euclid(6.0)
        } else if max == g {
            (b - r) / chroma + 2.0
        } else {
            (r - g) / chroma + 4.0
        };
        (sector * 60.0, chroma / max)
    }

    const BLACK: (u8, u8, u8) = (0, 0, 0);
    const WHITE: (u8, u8, u8) = (255, 255, 255);
    const DARK_GRAY: (u8, u8, u8) = (0x1e, 0x1e, 0x1e);

    #[test]
    fn the_formula_gives_wcag_s_own_figures() {
        assert!((contrast(BLACK, WHITE) - 21.0).abs() < 1e-9);
        assert!((contrast(WHITE, WHITE) - 1.0).abs() < 1e-9);
        // #767676 is the lightest gray with 4.5:1 on white.
        assert!(contrast((0x76, 0x76, 0x76), WHITE) >= 4.5);
        assert!(contrast((0x77, 0x77, 0x77), WHITE) < 4.5);
        assert_eq!(xterm_rgb(29), (0, 135, 95));
        assert_eq!(xterm_rgb(244), (128, 128, 128));
    }

    #[test]
    fn every_nick_color_reads_on_black_and_on_white() {
        for c in NICK_PALETTE {
            for (shown, rgb) in [("24-bit", c.rgb), ("256-color", xterm_rgb(c.xterm))] {
                let (dark, light) = (contrast(rgb, BLACK), contrast(rgb, WHITE));
                assert!(dark >= 4.5 && light >= 4.5, "{c:?} {shown}: {dark:.2} and {light:.2}");
                // A dark gray background: the most a color can have there while it keeps
                // 4.5:1 on white is about 4.06:1.
                let gray = contrast(rgb, DARK_GRAY);
                assert!(gray >= 3.5, "{c:?} {shown}: {gray:.2} on #1e1e1e");
            }
        }
    }

    #[test]
    fn no_nick_color_is_an_error_s_red_and_no_two_hues_are_close() {
        let hues: Vec<f64> = NICK_PALETTE.iter().map(|c| hue(c.rgb).0).collect();
        for (c, h) in NICK_PALETTE.iter().zip(&hues) {
            let from_red = h.min(360.0 - h);
            assert!(from_red >= 30.0, "{c:?} is {h:.0}°, too near red");
            assert!(hue(c.rgb).1 >= 0.6, "{c:?} is too gray to tell apart");
            let fallback = hue(xterm_rgb(c.xterm)).0;
            assert!(fallback.min(360.0 - fallback) >= 30.0, "{c:?}'s stand-in is red");
        }
        for pair in hues.windows(2) {
            assert!(pair[1] - pair[0] >= 20.0, "hues {pair:?} are too close");
        }
    }

    #[test]
    fn nick_colors_are_stable_and_case_insensitive() {
        assert_eq!(nick_color("alice"), nick_color("ALICE"));
        assert_eq!(nick_color("ΣΑΣ"), nick_color("σασ"));
        assert_eq!(nick_color("cafe\u{301}"), nick_color("CAFÉ"));
        let distinct: std::collections::HashSet<NickColor> =
            ["alice", "bob", "carol", "dave", "eve", "mallory", "trent"].map(nick_color).into();
        assert!(distinct.len() > 3, "palette is badly spread: {distinct:?}");
        assert_eq!(nick_color("bob").sgr(false), format!("38;5;{}", nick_color("bob").xterm));
        assert!(nick_color("bob").sgr(true).starts_with("38;2;"));
    }
}
