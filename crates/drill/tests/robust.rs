//! No input makes the runner panic: a rich script, mutated byte by byte and line by line
//! with a fixed pseudo-random sequence, always gives an outcome.

use rawtcp_drill::{Options, run_script};

const RICH: &str = "--tolerance_usecs=5000
`sysctl -q net.ipv4.tcp_timestamps=1`
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0    bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.168.0.1\")}, 16) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 2>
+0    > S. 0:0(0) ack 1 <...>
+.01  < . 1:1(0) ack 1 win 1000 <nop,nop,TS val 110 ecr 1>
+0    accept(3, ..., ...) = 4
+0    sendmsg(4, {msg_name(0)=NULL, msg_iov(2)=[{..., 100}, {..., 200}], msg_flags=0}, 0) = 300
+0    > P. 1:301(300) ack 1 <nop,nop,TS val 1 ecr 110>
+0~+.1 < . 1:1(0) ack 301 win 1000 <nop,nop,TS val 120 ecr 1,sack 1:2>
+0...0.2 read(4, ..., 1000) = 10
+.1   < P. 1:11(10) ack 301 win 1000
+0    poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLIN|POLLOUT}], 1, 0) = 1
+0    ioctl(4, SIOCOUTQ, [0]) = 0
* < icmp unreachable frag_needed mtu 576 [1:301(300)]
%{ assert tcpi_state == TCP_ESTABLISHED and tcpi_snd_mss <= 1000 }%
+0    shutdown(4, SHUT_WR) = 0
+0    close(4) = 0
+1000 close(3) = 0
";

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn mutated_scripts_never_panic() {
    let alphabet: &[u8] = b"0123456789+-.:~*()<>[]{},=|`%SFRP.EWacknowinmsTSvalecr \n\xff";
    let mut rng = Lcg(15);
    let bytes = RICH.as_bytes();
    for _ in 0..1500 {
        let mut mutated = bytes.to_vec();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % mutated.len();
            match rng.next() % 3 {
                0 => mutated[at] = alphabet[(rng.next() as usize) % alphabet.len()],
                1 => {
                    mutated.remove(at);
                }
                _ => mutated.insert(at, alphabet[(rng.next() as usize) % alphabet.len()]),
            }
        }
        let text = String::from_utf8_lossy(&mutated);
        let _ = run_script(&text, &Options::default());
    }
}

#[test]
fn lines_in_any_order_never_panic() {
    let lines: Vec<&str> = RICH.lines().collect();
    let mut rng = Lcg(7);
    for _ in 0..300 {
        let mut shuffled = lines.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, (rng.next() as usize) % (i + 1));
        }
        let _ = run_script(&shuffled.join("\n"), &Options::default());
    }
    // Extreme values.
    for text in [
        "0 < S 0:4294967295(4294967295) win 65535\n",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n0 listen(3, 1) = 0\n0 < S 0:60000(60000) win 0\n",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n99999999999 close(3) = 0\n",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n0 write(3, ..., 999999999999) = 1\n",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = -3\n0 close(-3) = 0\n",
        "* > S 0:0(0)\n",
        "0...99999999 accept(3, ..., ...) = 4\n",
    ] {
        let _ = run_script(text, &Options::default());
    }
}
