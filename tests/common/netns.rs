//! Simulated hosts for tests: Linux network namespaces, each with one
//! interface on a bridge that lives in a namespace of its own, addresses in
//! 10.201.0.0/24. Nothing is created in, or routed to, the machine's own
//! namespace. Everything is removed on drop, even when a test fails.
//!
//! Needs root (CI runs as root; `.ci/run` installs `iproute2`). Without
//! it a test fails with one line saying why, unless `SUBNET_SKIP_NETNS=1`
//! is set, in which case [`bridge`] returns `None` and the test returns.
//!
//! Also used by the NAT benchmark (`examples/nat.rs`).

use std::{
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

/// A child process killed (and reaped) when dropped, so a failing test
/// leaves nothing running.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

static BEDS: AtomicUsize = AtomicUsize::new(0);

/// A host: a network namespace with `eth0` at `ip` on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name, for `ip netns exec`.
    pub ns: String,
    /// Its address on the bridge.
    pub ip: String,
}

impl Host {
    /// Makes `name` resolve to `ip` inside this host (`ip netns exec`
    /// mounts `/etc/netns/<ns>/hosts` over `/etc/hosts`); removed with the
    /// bridge.
    pub fn resolve(&self, name: &str, ip: &str) {
        let dir = format!("/etc/netns/{}", self.ns);
        std::fs::create_dir_all(&dir).expect("/etc/netns is writable (root)");
        std::fs::write(
            format!("{dir}/hosts"),
            format!("127.0.0.1 localhost\n{ip} {name}\n"),
        )
        .expect("/etc/netns is writable (root)");
    }

    /// A command that runs `program` inside this host.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns, program]);
        command
    }

    /// Runs `program args` inside this host and returns its output.
    pub fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        self.command(program)
            .args(args)
            .output()
            .expect("ip netns exec runs")
    }

    /// Starts `program args` inside this host, killed when dropped.
    pub fn spawn(&self, program: &str, args: &[&str]) -> KillOnDrop {
        KillOnDrop(
            self.command(program)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(if std::env::var_os("SUBNET_TEST_LOG").is_some() {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                })
                .spawn()
                .expect("ip netns exec runs"),
        )
    }
}

/// Hosts on one bridge, and hosts behind NAT routers on it.
#[derive(Debug)]
pub struct Bridge {
    switch: String,
    prefix: String,
    /// The hosts, at 10.201.0.2, .3, …
    pub hosts: Vec<Host>,
    /// NAT routers and the hosts behind them.
    pub natted: Vec<(Host, Host)>,
}

/// Runs `ip args`, failing with its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `hosts` hosts on a bridge; `None` if namespaces cannot be created and
/// `SUBNET_SKIP_NETNS=1` is set. Panics with one line otherwise.
pub fn bridge(hosts: usize) -> Option<Bridge> {
    let bed = BEDS.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("sn{}-{bed}", std::process::id());
    let mut bridge = Bridge {
        switch: format!("{prefix}-sw"),
        prefix: prefix.clone(),
        hosts: Vec::new(),
        natted: Vec::new(),
    };
    match bridge.create(&prefix, hosts) {
        Ok(()) => Some(bridge),
        Err(_) if std::env::var_os("SUBNET_SKIP_NETNS").is_some_and(|v| v == "1") => None,
        Err(error) => panic!(
            "cannot create network namespaces for simulated hosts (needs root and iproute2; set SUBNET_SKIP_NETNS=1 to skip): {error}"
        ),
    }
}

impl Bridge {
    fn create(&mut self, prefix: &str, hosts: usize) -> Result<(), String> {
        let sw = self.switch.clone();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let ns = format!("{prefix}-h{i}");
            let address = format!("10.201.0.{}", i + 2);
            ip(&["netns", "add", &ns])?;
            self.hosts.push(Host {
                ns: ns.clone(),
                ip: address.clone(),
            });
            let port = format!("v{i}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }
}

impl Bridge {
    /// A host behind a NAT router of its own: the router is on the bridge
    /// (at 10.201.0.100 + n), the host on a private link (10.201.(n + 1).2,
    /// routed through 10.201.(n + 1).1). The router masquerades what the
    /// host sends out (nftables) and forwards nothing that comes in unasked,
    /// nor answers it (no reset: it drops it), as a home router does. Returns the host; panics with one line if it
    /// cannot be made.
    pub fn behind_nat(&mut self) -> Host {
        let n = self.natted.len();
        let router = Host {
            ns: format!("{}-r{n}", self.prefix),
            ip: format!("10.201.0.{}", 100 + n),
        };
        let host = Host {
            ns: format!("{}-n{n}", self.prefix),
            ip: format!("10.201.{}.2", n + 1),
        };
        let gateway = format!("10.201.{}.1", n + 1);
        self.natted.push((router, host));
        let (router, host) = self.natted.last().expect("pushed");
        let sw = &self.switch;
        let port = format!("r{n}");
        let made = (|| -> Result<(), String> {
            ip(&["netns", "add", &router.ns])?;
            ip(&["netns", "add", &host.ns])?;
            ip(&[
                "-n", sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &router.ns,
            ])?;
            ip(&["-n", sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", sw, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                &router.ns,
                "addr",
                "add",
                &format!("{}/24", router.ip),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &router.ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &router.ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &router.ns, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
                "netns", &host.ns,
            ])?;
            ip(&[
                "-n",
                &router.ns,
                "addr",
                "add",
                &format!("{gateway}/24"),
                "dev",
                "lan0",
            ])?;
            ip(&["-n", &router.ns, "link", "set", "lan0", "up"])?;
            ip(&[
                "-n",
                &host.ns,
                "addr",
                "add",
                &format!("{}/24", host.ip),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &host.ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host.ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &host.ns, "route", "add", "default", "via", &gateway])?;
            run_in(
                &router.ns,
                "sysctl",
                &["-qw", "net.ipv4.ip_forward=1"],
                None,
            )?;
            let rules = "table ip nat {\n\
                  chain postrouting { type nat hook postrouting priority 100; oifname \"eth0\" masquerade; }\n\
                }\n\
                table ip filter {\n\
                  chain forward { type filter hook forward priority 0; policy drop;\n\
                    ct state established,related accept;\n\
                    iifname \"lan0\" accept;\n\
                  }\n\
                  chain input { type filter hook input priority 0; policy accept;\n\
                    iifname \"eth0\" ct state new drop;\n\
                  }\n\
                }\n";
            run_in(&router.ns, "nft", &["-f", "-"], Some(rules))
        })();
        if let Err(error) = made {
            panic!(
                "cannot create a NAT router for a simulated host (needs root, iproute2, nftables): {error}"
            );
        }
        host.clone()
    }
}

/// Runs `program args` in namespace `ns`, with `input` on its stdin.
fn run_in(ns: &str, program: &str, args: &[&str], input: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if let Some(input) = input {
        child
            .stdin
            .take()
            .expect("stdin piped")
            .write_all(input.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` in {ns} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let natted = self.natted.iter().flat_map(|(r, h)| [&r.ns, &h.ns]);
        for ns in self
            .hosts
            .iter()
            .map(|h| &h.ns)
            .chain(natted)
            .chain([&self.switch])
        {
            // Whatever still runs in it goes first.
            if let Ok(pids) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = ip(&["netns", "del", ns]);
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
    }
}

/// One answered call of `subnet call --count`, as it reported itself on
/// stderr (`call 2/6: 0.412 ms direct`).
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// How long it took, in milliseconds.
    pub ms: f64,
    /// Whether it went over a direct connection (else: relayed).
    pub direct: bool,
}

impl Host {
    /// Runs `program args` (a `subnet call ... --count N`) inside this host;
    /// returns each answered call as it reported itself, or everything the
    /// program wrote if it failed.
    pub fn calls(&self, program: &str, args: &[&str]) -> Result<Vec<Call>, String> {
        let out = self.run(program, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)));
        }
        Ok(stderr
            .lines()
            .filter(|l| l.starts_with("call "))
            .filter_map(|l| {
                let mut words = l.split_whitespace().skip(2);
                let ms = words.next()?.parse().ok()?;
                let path = words.nth(1)?;
                Some(Call {
                    ms,
                    direct: path == "direct",
                })
            })
            .collect())
    }
}

/// Writes a key with `program keygen` (the `subnet` binary) into `dir`;
/// returns its file and peer id.
pub fn keygen(
    program: &str,
    dir: &std::path::Path,
    name: &str,
) -> Result<(String, String), String> {
    let path = dir.join(format!("{name}.key"));
    let path = path.to_str().ok_or("a key path that is not UTF-8")?;
    let out = Command::new(program)
        .args(["keygen", "--out", path])
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((path.to_owned(), id))
}

/// Reads lines from a child's stdout until one starts with `listening on`,
/// and returns that address.
pub fn first_address(child: &mut Child) -> String {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(child.stdout.as_mut().expect("stdout piped"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("the program writes");
        assert!(n > 0, "the program ended before listening");
        if let Some(address) = line.trim().strip_prefix("listening on ") {
            return address.to_owned();
        }
    }
}
