//! `--shard I/N`: the I-th of N deterministic slices of a `--mx` input, so
//! that N machines or jobs split a list too big for one. A domain belongs
//! to exactly one shard, chosen by a hash of its normalised name (the
//! first 8 bytes of its SHA-256: the same on every machine, every run and
//! every version): the union of the N shards' domain records is the
//! unsharded run's, with no domain in two shards. An MX host shared by
//! domains of several shards is scanned by each of them.

use sha2::Digest as _;
use std::io::{BufRead, Read};

/// One slice: `index` of `count`, 1-based as typed (`--shard 2/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not I/N with 1 <= I <= N, e.g. 1/4 … 4/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// Whether `domain` (as the input has it) is in this slice. The name
    /// is normalised as the run normalises it, so `Example.NET.` and
    /// `example.net` fall in the same slice.
    pub fn keeps(&self, domain: &str) -> bool {
        let name = crate::dns::normalise(domain);
        let digest = sha2::Sha256::digest(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
        u64::from_be_bytes(first) % self.count == self.index - 1
    }

    /// The input with only this slice's domains; comments, blank lines and
    /// lines that are not domains pass through for the run to judge.
    pub fn filter(self, source: Box<dyn BufRead + Send>) -> Box<dyn BufRead + Send> {
        Box::new(Filtered {
            inner: source,
            shard: self,
            line: Vec::new(),
            pos: 0,
        })
    }
}

/// A reader that passes on the lines its shard keeps.
struct Filtered {
    inner: Box<dyn BufRead + Send>,
    shard: Shard,
    line: Vec<u8>,
    pos: usize,
}

impl Filtered {
    fn domain_of(line: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(line);
        let name = text.split('#').next().unwrap_or("").trim();
        (!name.is_empty()).then(|| name.to_owned())
    }
}

impl Read for Filtered {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(available.get(..n).unwrap_or_default());
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Filtered {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos >= self.line.len() {
            self.line.clear();
            self.pos = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                break;
            }
            if Self::domain_of(&self.line).is_some_and(|d| !self.shard.keeps(&d)) {
                self.line.clear();
            }
        }
        Ok(self.line.get(self.pos..).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.line.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_is_in_exactly_one_shard() {
        let domains: Vec<String> = (0..200).map(|i| format!("d{i}.example")).collect();
        let shards: Vec<Shard> = (1..=7).map(|i| format!("{i}/7").parse().expect("shard")).collect();
        for d in &domains {
            assert_eq!(shards.iter().filter(|s| s.keeps(d)).count(), 1, "{d}");
        }
        // Not all in one: the hash spreads them.
        assert!(shards.iter().all(|s| domains.iter().any(|d| s.keeps(d))));
        let s = shards[3];
        assert_eq!(s.keeps("Example.NET."), s.keeps("example.net"));
    }

    #[test]
    fn the_filter_keeps_its_lines_and_comments() {
        let input = "# partners\na.example\nb.example\n\nc.example # note\nd.example";
        let shard: Shard = "2/3".parse().expect("shard");
        let mut out = String::new();
        shard
            .filter(Box::new(std::io::Cursor::new(input.as_bytes().to_vec())))
            .read_to_string(&mut out)
            .expect("read");
        let kept: Vec<&str> = out.lines().collect();
        let want: Vec<&str> = input
            .lines()
            .filter(|l| {
                let d = l.split('#').next().unwrap_or("").trim();
                d.is_empty() || shard.keeps(d)
            })
            .collect();
        assert_eq!(kept, want);
    }

    #[test]
    fn bad_shards_are_refused() {
        for s in ["0/4", "5/4", "1", "a/b", "1/0"] {
            assert!(s.parse::<Shard>().is_err(), "{s}");
        }
    }
}
