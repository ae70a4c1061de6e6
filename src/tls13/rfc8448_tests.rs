//! The simple 1-RTT handshake of RFC 8448 §3, replayed: the client's
//! private key, its ClientHello, the server's ServerHello and its one
//! encrypted record (EncryptedExtensions, Certificate, CertificateVerify,
//! Finished), with the intermediate values the RFC prints. The `.bin`
//! files in `testdata/` are the RFC's hex dumps as bytes.

use super::*;

const CLIENT_PRIVATE: &str = "49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005";
const SHARED: &str = "8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d";
const HANDSHAKE_SECRET: &str = "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac";
const SERVER_HS_TRAFFIC: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
const SERVER_HS_KEY: &str = "3fce516009c21727d0f2e4e86ee403bc";
const SERVER_HS_IV: &str = "5d313eb2671276ee13000b30";

const CLIENT_HELLO: &[u8] = include_bytes!("testdata/rfc8448_client_hello.bin");
const SERVER_HELLO: &[u8] = include_bytes!("testdata/rfc8448_server_hello.bin");
const CERTIFICATE: &[u8] = include_bytes!("testdata/rfc8448_certificate.bin");
const SERVER_FLIGHT: &[u8] = include_bytes!("testdata/rfc8448_server_flight_record.bin");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn client_key() -> KeyPair {
    KeyPair::x25519(unhex(CLIENT_PRIVATE).try_into().unwrap())
}

/// The ServerHello as a record, as the server sent it.
fn server_hello_record() -> Vec<u8> {
    let mut r = vec![22, 3, 3];
    r.extend_from_slice(&u16::try_from(SERVER_HELLO.len()).unwrap().to_be_bytes());
    r.extend_from_slice(SERVER_HELLO);
    r
}

#[test]
fn key_schedule_matches_rfc8448_simple_handshake() {
    let key = client_key();
    let hello = ServerHello::read_body(&SERVER_HELLO[4..], 4).unwrap();
    let Some(ServerExtension::KeyShare(share)) = hello.extension(ExtensionType::KEY_SHARE) else {
        panic!("no key share");
    };
    let shared = key.shared(&share.key_exchange).unwrap();
    assert_eq!(hsscan_wire::hex(&shared), SHARED);
    let hash = transcript_hash(Hash::Sha256, &[CLIENT_HELLO, SERVER_HELLO]);
    let secrets = schedule::handshake_secrets(Hash::Sha256, &shared, &hash).unwrap();
    assert_eq!(hsscan_wire::hex(&secrets.handshake_secret), HANDSHAKE_SECRET);
    assert_eq!(
        hsscan_wire::hex(&secrets.server_handshake_traffic_secret),
        SERVER_HS_TRAFFIC
    );
    let suite = Suite::of(CipherSuite(0x1301)).unwrap();
    let opener = RecordOpener::new(suite, &secrets.server_handshake_traffic_secret).unwrap();
    let (k, iv) = opener.key_and_iv();
    assert_eq!(hsscan_wire::hex(k), SERVER_HS_KEY);
    assert_eq!(hsscan_wire::hex(iv), SERVER_HS_IV);
}

#[test]
fn decrypts_the_rfc8448_server_flight_to_its_certificate() {
    let mut hello = CertificateHello::replay(CLIENT_HELLO, vec![client_key()]).unwrap();
    assert_eq!(hello.push(&server_hello_record()).unwrap(), Step::More);
    let Step::Done(flight) = hello.push(SERVER_FLIGHT).unwrap() else {
        panic!("the flight did not complete");
    };
    assert_eq!(flight.suite, CipherSuite(0x1301));
    assert_eq!(flight.group, NamedGroup::X25519);
    assert!(!flight.retried);
    // EncryptedExtensions: supported_groups, record_size_limit, server_name.
    assert_eq!(
        flight.encrypted_extensions,
        [ExtensionType(10), ExtensionType(28), ExtensionType(0)]
    );
    let expected = Certificate::read_body(&CERTIFICATE[4..], 4, true).unwrap();
    assert_eq!(flight.certificates, [expected.entries[0].der.clone()]);
    assert_eq!(flight.signature_scheme, Some(SignatureScheme::RSA_PSS_RSAE_SHA256));
}

#[test]
fn the_flight_pushed_a_byte_at_a_time_gives_the_same_chain() {
    let mut hello = CertificateHello::replay(CLIENT_HELLO, vec![client_key()]).unwrap();
    let bytes = [server_hello_record(), SERVER_FLIGHT.to_vec()].concat();
    let mut done = None;
    for b in &bytes {
        if let Step::Done(f) = hello.push(std::slice::from_ref(b)).unwrap() {
            done = Some(f);
        }
    }
    assert_eq!(done.unwrap().certificates.len(), 1);
}

#[test]
fn a_changed_byte_of_the_encrypted_record_is_a_decrypt_error_not_a_chain() {
    for at in [5, 100, SERVER_FLIGHT.len() - 1] {
        let mut hello = CertificateHello::replay(CLIENT_HELLO, vec![client_key()]).unwrap();
        hello.push(&server_hello_record()).unwrap();
        let mut flight = SERVER_FLIGHT.to_vec();
        flight[at] ^= 1;
        let e = hello.push(&flight).unwrap_err();
        assert_eq!(e, Error::Decrypt(OpenError { seq: 0 }), "byte {at}");
    }
}

#[test]
fn a_wrong_private_key_cannot_decrypt() {
    let mut hello = CertificateHello::replay(CLIENT_HELLO, vec![KeyPair::x25519([7; 32])]).unwrap();
    hello.push(&server_hello_record()).unwrap();
    assert!(matches!(hello.push(SERVER_FLIGHT), Err(Error::Decrypt(_))));
}

#[test]
fn unencrypted_filler_after_the_server_hello_is_an_error_not_a_panic() {
    // What an emulator with no keys sends: application_data records of
    // junk, and a plaintext Certificate where only ciphertext may be.
    let mut filler = vec![23, 3, 3, 0, 40];
    filler.extend([0x5a; 40]);
    let mut hello = CertificateHello::replay(CLIENT_HELLO, vec![client_key()]).unwrap();
    hello.push(&server_hello_record()).unwrap();
    assert!(matches!(hello.push(&filler), Err(Error::Decrypt(_))));
    let mut hello = CertificateHello::replay(CLIENT_HELLO, vec![client_key()]).unwrap();
    hello.push(&server_hello_record()).unwrap();
    let plain = [22, 3, 3, 0, 4, 11, 0, 0, 0];
    assert!(matches!(hello.push(&plain), Err(Error::Protocol(_))));
    // Every prefix of a truncated flight just asks for more.
    let mut hello = CertificateHello::replay(CLIENT_HELLO, vec![client_key()]).unwrap();
    hello.push(&server_hello_record()).unwrap();
    assert_eq!(
        hello.push(&SERVER_FLIGHT[..SERVER_FLIGHT.len() - 1]).unwrap(),
        Step::More
    );
}

#[test]
fn a_tls12_server_hello_and_an_alert_are_named() {
    let mut hello = CertificateHello::replay(CLIENT_HELLO, vec![client_key()]).unwrap();
    assert!(matches!(
        hello.push(&[21, 3, 3, 0, 2, 2, 40]),
        Err(Error::Alert(a)) if a.description == hsscan_wire::AlertDescription::HANDSHAKE_FAILURE
    ));
}

#[test]
fn new_hello_offers_tls13_only_with_an_x25519_share_and_both_groups() {
    let p256 = KeyPair::p256([1; 32]).unwrap();
    assert_eq!(p256.share().key_exchange.len(), 65);
    let params = HelloParams {
        random: [3; 32],
        session_id: vec![4; 32],
        sni: Some("mx.example.net".into()),
        signature_schemes: vec![SignatureScheme::ECDSA_SECP256R1_SHA256],
    };
    let (_, record) = CertificateHello::new(&params, vec![KeyPair::x25519([2; 32]), p256]).unwrap();
    assert!(!(256..512).contains(&record.len()), "{}", record.len());
    let hello = ClientHello::read_message(&record[5..]).unwrap();
    assert_eq!(hello.offered_versions(), [ProtocolVersion::TLS13]);
    assert_eq!(hello.sni(), Some("mx.example.net"));
    let Some(ClientExtension::KeyShare(shares)) = hello.extension(ExtensionType::KEY_SHARE) else {
        panic!("no key_share");
    };
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0].group, NamedGroup::X25519);
    assert_eq!(
        hello.extension(ExtensionType::SUPPORTED_GROUPS),
        Some(&ClientExtension::SupportedGroups(GROUPS.to_vec()))
    );
}
