use super::*;

#[test]
fn unspecified_multicast_and_broadcast_addresses_are_never_believed() {
    for address in [
        "/ip4/0.0.0.0/tcp/1",
        "/ip6/::/tcp/1",
        "/ip4/224.0.0.1/udp/1/quic-v1",
        "/ip4/255.255.255.255/tcp/1",
        "/ip6/ff02::1/tcp/1",
    ] {
        assert!(!is_believable(&address.parse().unwrap(), true), "{address}");
    }
    let lo: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
    assert!(is_believable(&lo, true) && !is_believable(&lo, false));
    let lan: Multiaddr = "/ip4/10.201.0.2/tcp/1".parse().unwrap();
    assert!(is_believable(&lan, false));
    let dns: Multiaddr = "/dns4/node.example/tcp/1".parse().unwrap();
    assert!(is_believable(&dns, false));
}

#[test]
fn a_circuit_address_names_its_relay_and_the_peer_id_comes_off() {
    let relay = PeerId::random();
    let target = PeerId::random();
    let circuit: Multiaddr =
        format!("/ip4/10.201.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{target}")
            .parse()
            .unwrap();
    let (peer, at) = relay_of(&circuit).unwrap();
    assert_eq!(peer, relay);
    assert_eq!(
        at,
        format!("/ip4/10.201.0.1/tcp/4001/p2p/{relay}")
            .parse()
            .unwrap()
    );
    assert_eq!(transport(&circuit), "relay");
    let direct: Multiaddr = format!("/ip4/10.201.0.1/tcp/4001/p2p/{relay}")
        .parse()
        .unwrap();
    assert!(relay_of(&direct).is_none());
    assert_eq!(transport(&direct), "tcp");
    assert_eq!(
        without_peer_id(direct),
        "/ip4/10.201.0.1/tcp/4001".parse().unwrap()
    );
}
