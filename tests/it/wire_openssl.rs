//! The ClientHello builder and the deframer against `openssl s_server`
//! (OpenSSL 3.0).

use hsscan_wire::{ClientExtension, ClientHello, ExtensionType, NamedGroup, ProtocolVersion};

use crate::support::{self, Server};

/// `openssl s_server` on 127.0.0.1 with the RSA leaf, TLS 1.0 to 1.3 and
/// every suite at security level 0 (OpenSSL 3.0 at level 1 refuses the
/// SHA-1 signatures TLS 1.0/1.1 (EC)DHE needs).
fn s_server() -> Server {
    crate::support::openssl_s_server(
        "openssl-s_server",
        &[
            "-min_protocol",
            "TLSv1",
            "-max_protocol",
            "TLSv1.3",
            "-cipher",
            "ALL:@SECLEVEL=0",
        ],
    )
}

fn draws_server_hello_of(v: ProtocolVersion) {
    let mut server = s_server();
    let hello = support::hello_for(v, 1);
    let flight = server.hello(&hello, ProtocolVersion::TLS10);
    let sh = flight.expect_server_hello();
    support::assert_selects(sh, v, &hello.cipher_suites);
    support::assert_downgrade_sentinel(sh, v);
    if v != ProtocolVersion::TLS13 {
        // The whole TLS ≤ 1.2 flight decodes and ends with ServerHelloDone.
        assert!(
            matches!(flight.events.last(), Some(hsscan_wire::Event::ServerHelloDone)),
            "{}",
            flight.describe()
        );
        assert!(
            flight
                .events
                .iter()
                .any(|e| matches!(e, hsscan_wire::Event::Certificate(_))),
            "no Certificate: {}",
            flight.describe()
        );
    }
}

#[test]
fn openssl_answers_tls10_hello_with_tls10_server_hello() {
    draws_server_hello_of(ProtocolVersion::TLS10);
}

#[test]
fn openssl_answers_tls11_hello_with_tls11_server_hello() {
    draws_server_hello_of(ProtocolVersion::TLS11);
}

#[test]
fn openssl_answers_tls12_hello_with_tls12_server_hello() {
    draws_server_hello_of(ProtocolVersion::TLS12);
}

#[test]
fn openssl_answers_tls13_hello_with_tls13_server_hello() {
    draws_server_hello_of(ProtocolVersion::TLS13);
}

/// A TLS 1.3-only hello with an empty key_share list and the given groups.
pub fn hello_without_key_shares(groups: &[NamedGroup], tag: u8) -> ClientHello {
    let mut hello = support::hello_for(ProtocolVersion::TLS13, tag);
    for ext in hello.extensions.iter_mut().flatten() {
        match ext {
            ClientExtension::KeyShare(shares) => shares.clear(),
            ClientExtension::SupportedGroups(g) => *g = groups.to_vec(),
            _ => {}
        }
    }
    assert_eq!(
        hello.extension(ExtensionType::KEY_SHARE),
        Some(&ClientExtension::KeyShare(vec![]))
    );
    hello
}

/// Sends a key-share-less TLS 1.3 hello offering `groups`; returns the
/// group the HelloRetryRequest asks for, after checking the rest of it.
pub fn retry_group(server: &mut Server, groups: &[NamedGroup], tag: u8) -> NamedGroup {
    let hello = hello_without_key_shares(groups, tag);
    let flight = server.hello(&hello, ProtocolVersion::TLS10);
    let hrr = flight.retry_request().unwrap_or_else(|| {
        panic!(
            "expected a HelloRetryRequest, got {}\n{}",
            flight.describe(),
            server.log()
        )
    });
    assert_eq!(hrr.selected_version(), ProtocolVersion::TLS13, "{hrr:?}");
    assert!(hello.cipher_suites.contains(&hrr.cipher_suite), "{hrr:?}");
    let info = hsscan_wire::catalog::suite(hrr.cipher_suite).expect("HRR suite in catalog");
    assert!(info.offerable_in(ProtocolVersion::TLS13), "{hrr:?}");
    let group = hrr
        .key_share_group()
        .unwrap_or_else(|| panic!("HRR without key_share: {hrr:?}"));
    assert!(groups.contains(&group), "HRR asks for {group}, offered {groups:?}");
    eprintln!("DBG HRR {hrr:?}");
    group
}

#[test]
fn openssl_answers_empty_key_share_with_retry_request_for_an_offered_group() {
    let mut server = s_server();
    retry_group(&mut server, &[NamedGroup::X25519, NamedGroup::SECP256R1], 2);
    let group = retry_group(&mut server, &[NamedGroup::SECP384R1], 3);
    assert_eq!(group, NamedGroup::SECP384R1);
}

#[test]
fn openssl_reassembles_hello_split_into_100_byte_records_and_3_writes() {
    let mut server = s_server();
    let hello = ClientHello::typical(
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS13,
        support::random(4),
        support::suites_for(ProtocolVersion::TLS13),
        Some("localhost"),
    );
    let framing = support::split_framing(&hello, ProtocolVersion::TLS10, 100, 3);
    let writes = hello.to_writes(&framing).expect("frame ClientHello");
    assert_eq!(writes.len(), 3, "write sizes {:?}", framing.write_sizes);

    // The framing is what was asked for: the client-side deframer sees the
    // same hello, in records of 100 bytes (the last shorter).
    let message_len = hello.to_bytes().expect("encode").len();
    let mut own = hsscan_wire::Deframer::new(hsscan_wire::Side::Client);
    for w in &writes {
        own.push(w).expect("push own bytes");
    }
    match own.next_event() {
        Ok(Some(hsscan_wire::Event::ClientHello(h))) => assert_eq!(h, hello),
        other => panic!("own hello decodes as {other:?}"),
    }
    let framed = own.hello_framing().expect("hello framing");
    assert_eq!(framed.records, message_len.div_ceil(100));
    assert!(
        framed.records > 3,
        "a hello of {message_len} bytes makes too few records"
    );
    assert_eq!(framed.bytes, writes.iter().map(Vec::len).sum::<usize>());

    let flight = server.exchange(&writes);
    let sh = flight.expect_server_hello();
    support::assert_selects(sh, ProtocolVersion::TLS13, &hello.cipher_suites);
}
