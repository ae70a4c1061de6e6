//! From a captured frame to a TCP segment: the link layer (Ethernet with
//! VLAN tags, Linux cooked SLL and SLL2, raw IP, BSD null/loopback), IPv4
//! or IPv6, then TCP, through etherparse's lax slicers so that a frame cut
//! by the snap length still yields what it holds.

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TcpSlice};
use pcap_parser::Linktype;
use std::net::{IpAddr, SocketAddr};

/// TCP header flags that matter to reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// One TCP segment.
#[derive(Debug)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    pub payload: &'a [u8],
    /// The IP packet was cut short by the capture: payload bytes are missing.
    pub truncated: bool,
}

/// Why a frame gave no segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type this reader does not decode.
    LinkType(i32),
    /// Not IP, or not TCP: nothing to say about it.
    NotTcp,
    /// An IP fragment: TCP in fragments is not reassembled.
    Fragment,
    /// Headers cut short or malformed.
    Malformed,
}

/// Linux cooked capture v1 header bytes (protocol at offset 14).
const SLL_HEADER: usize = 16;
/// Linux cooked capture v2 header bytes (protocol at offset 0).
const SLL2_HEADER: usize = 20;
/// BSD null/loopback header: a 4-byte address family.
const NULL_HEADER: usize = 4;

/// Decodes one frame of the given link type.
pub fn decode(linktype: Linktype, data: &[u8]) -> Result<Segment<'_>, Skip> {
    if linktype == Linktype::ETHERNET {
        if let Some(seg) = ethernet_ipv4_tcp(data) {
            return Ok(seg);
        }
    }
    decode_lax(linktype, data)
}

/// The common frame read directly: Ethernet without a VLAN tag, a whole
/// unfragmented IPv4 packet, TCP with a sane header. `None` for anything
/// else, which etherparse's lax slicers then read (the same fields, with
/// every odd case handled); a frame takes one road or the other, never
/// both with different results.
fn ethernet_ipv4_tcp(data: &[u8]) -> Option<Segment<'_>> {
    let (eth, ip) = data.split_at_checked(14)?;
    if eth.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let &[vihl, _, l0, l1, _, _, f0, f1, _, proto] = ip.get(..10)? else {
        return None;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([l0, l1]));
    // Version 4, no fragment (neither more-fragments nor an offset), TCP.
    if vihl >> 4 != 4 || ihl < 20 || proto != 6 || u16::from_be_bytes([f0, f1]) & 0x3fff != 0 {
        return None;
    }
    // The whole packet is in the frame (Ethernet may pad it).
    let ip = ip.get(..total)?;
    let src = <[u8; 4]>::try_from(ip.get(12..16)?).ok()?;
    let dst = <[u8; 4]>::try_from(ip.get(16..20)?).ok()?;
    let tcp = ip.get(ihl..)?;
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    if doff < 20 || doff > tcp.len() {
        return None;
    }
    let u16_at = |i: usize| -> Option<u16> { Some(u16::from_be_bytes(<[u8; 2]>::try_from(tcp.get(i..i + 2)?).ok()?)) };
    let u32_at = |i: usize| -> Option<u32> { Some(u32::from_be_bytes(<[u8; 4]>::try_from(tcp.get(i..i + 4)?).ok()?)) };
    let flags = *tcp.get(13)?;
    Some(Segment {
        src: SocketAddr::new(IpAddr::from(src), u16_at(0)?),
        dst: SocketAddr::new(IpAddr::from(dst), u16_at(2)?),
        seq: u32_at(4)?,
        ack: u32_at(8)?,
        flags: Flags {
            syn: flags & 0x02 != 0,
            ack: flags & 0x10 != 0,
            fin: flags & 0x01 != 0,
            rst: flags & 0x04 != 0,
        },
        payload: tcp.get(doff..)?,
        truncated: false,
    })
}

fn decode_lax(linktype: Linktype, data: &[u8]) -> Result<Segment<'_>, Skip> {
    let sliced = match linktype {
        Linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Malformed)?,
        Linktype::LINUX_SLL => {
            let ether_type = EtherType(u16::from_be_bytes(two(data.get(14..16))?));
            LaxSlicedPacket::from_ether_type(ether_type, data.get(SLL_HEADER..).ok_or(Skip::Malformed)?)
        }
        Linktype::LINUX_SLL2 => {
            let ether_type = EtherType(u16::from_be_bytes(two(data.get(0..2))?));
            LaxSlicedPacket::from_ether_type(ether_type, data.get(SLL2_HEADER..).ok_or(Skip::Malformed)?)
        }
        // Raw IP under its several numbers (DLT_RAW is 12 or 14 on some BSDs).
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 | Linktype(12) | Linktype(14) => {
            LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)?
        }
        // The address family is in the capturing host's byte order (NULL)
        // or network order (LOOP); the IP version nibble says the same.
        Linktype::NULL | Linktype::LOOP => {
            LaxSlicedPacket::from_ip(data.get(NULL_HEADER..).ok_or(Skip::Malformed)?).map_err(|_| Skip::Malformed)?
        }
        Linktype(other) => return Err(Skip::LinkType(other)),
    };
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => (v4.header().source_addr().into(), v4.header().destination_addr().into()),
        Some(LaxNetSlice::Ipv6(v6)) => (v6.header().source_addr().into(), v6.header().destination_addr().into()),
        _ => return Err(Skip::NotTcp),
    };
    let ip_payload = sliced.ip_payload().ok_or(Skip::NotTcp)?;
    if ip_payload.ip_number != etherparse::IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    let tcp = TcpSlice::from_slice(ip_payload.payload).map_err(|_| Skip::Malformed)?;
    Ok(Segment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: Flags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        },
        payload: tcp.payload(),
        truncated: ip_payload.incomplete,
    })
}

fn two(b: Option<&[u8]>) -> Result<[u8; 2], Skip> {
    b.and_then(|b| <[u8; 2]>::try_from(b).ok()).ok_or(Skip::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .tcp(40000, 25, 1000, 65535)
            .ack(7)
            .psh();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn decodes_raw_null_sll_and_sll2() {
        let ip = tcp_v4(b"EHLO x\r\n");
        let s = decode(Linktype::RAW, &ip).unwrap();
        assert_eq!(s.src.to_string(), "192.0.2.1:40000");
        assert_eq!(s.dst.port(), 25);
        assert_eq!((s.seq, s.ack), (1000, 7));
        assert_eq!(s.payload, b"EHLO x\r\n");
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&ip);
        assert_eq!(decode(Linktype::NULL, &null).unwrap().payload, b"EHLO x\r\n");
        let mut sll = vec![0; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        assert_eq!(decode(Linktype::LINUX_SLL, &sll).unwrap().dst.port(), 25);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&ip);
        assert_eq!(decode(Linktype::LINUX_SLL2, &sll2).unwrap().dst.port(), 25);
    }

    #[test]
    fn decodes_ethernet_with_a_vlan_tag_and_ipv6() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(42).unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1, 465, 5, 100)
            .syn();
        let mut frame = Vec::new();
        b.write(&mut frame, &[]).unwrap();
        let s = decode(Linktype::ETHERNET, &frame).unwrap();
        assert!(s.flags.syn && !s.flags.ack);
        assert_eq!(s.dst.port(), 465);
        assert!(s.src.is_ipv6());
    }

    /// The direct road and etherparse's agree on every frame the direct one takes.
    #[test]
    fn ethernet_ipv4_frames_read_directly_match_etherparse() {
        let mut frames = Vec::new();
        for (i, payload) in [&b""[..], b"EHLO x\r\n", &[0x16; 1400]].iter().enumerate() {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([192, 0, 2, 1], [198, 51, 100, 7], 64)
                .tcp(40000 + i as u16, 25, 1000 * i as u32, 65535)
                .ack(7)
                .syn()
                .fin()
                .rst()
                .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
                .unwrap();
            let mut f = Vec::new();
            b.write(&mut f, payload).unwrap();
            frames.push(f.clone());
            f.extend_from_slice(&[0; 6]); // Ethernet padding
            frames.push(f);
        }
        for f in &frames {
            let fast = ethernet_ipv4_tcp(f).expect("read directly");
            let lax = decode_lax(Linktype::ETHERNET, f).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{lax:?}"));
        }
        // Cut, fragmented or tagged frames go to etherparse.
        let f = &frames[4];
        assert!(ethernet_ipv4_tcp(&f[..f.len() - 10]).is_none());
        let mut frag = f.clone();
        frag[14 + 6] |= 0x20;
        assert!(ethernet_ipv4_tcp(&frag).is_none());
        assert_eq!(decode(Linktype::ETHERNET, &frag).unwrap_err(), Skip::Fragment);
    }

    #[test]
    fn a_cut_frame_keeps_its_head_and_says_so() {
        let ip = tcp_v4(&[0x16; 100]);
        let s = decode(Linktype::RAW, &ip[..ip.len() - 40]).unwrap();
        assert!(s.truncated);
        assert_eq!(s.payload.len(), 60);
        assert_eq!(decode(Linktype::RAW, &ip[..30]).unwrap_err(), Skip::Malformed);
        assert_eq!(decode(Linktype(147), &ip).unwrap_err(), Skip::LinkType(147));
    }
}
