// Command tcpsend is bench/network's load generator: it sends N bytes over
// one TCP connection, half-closes it and waits for the receiver to close
// its side (it has read everything by then), and prints the seconds taken
// and the throughput in MB/s (10^6 bytes). With -l it is the receiver: it
// accepts one connection on ADDR, reads it to the end and closes it.
//
//	tcpsend ADDR BYTES
//	tcpsend -l ADDR
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-l" {
		receive(os.Args[2])
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: tcpsend ADDR BYTES")
		os.Exit(2)
	}
	n, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "tcpsend: bad byte count:", os.Args[2])
		os.Exit(2)
	}
	// The receiver may still be starting (a port forwarder accepts before
	// it listens): retry until it says hello, for 10 s.
	var conn *net.TCPConn
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", os.Args[1])
		if err == nil {
			var hello [1]byte
			if _, err = io.ReadFull(c, hello[:]); err == nil {
				conn = c.(*net.TCPConn)
				break
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "tcpsend:", err)
			os.Exit(1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for left := n; left > 0; {
		chunk := buf
		if left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		w, err := conn.Write(chunk)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tcpsend: write:", err)
			os.Exit(1)
		}
		left -= int64(w)
	}
	if err := conn.CloseWrite(); err != nil {
		fmt.Fprintln(os.Stderr, "tcpsend:", err)
		os.Exit(1)
	}
	// The receiver closes once it has read to the end.
	_, _ = io.Copy(io.Discard, conn)
	secs := time.Since(start).Seconds()
	fmt.Printf("%.3f %.0f\n", secs, float64(n)/secs/1e6)
}

func receive(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpsend:", err)
		os.Exit(1)
	}
	conn, err := l.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpsend:", err)
		os.Exit(1)
	}
	l.Close()
	if _, err := conn.Write([]byte{'!'}); err != nil {
		fmt.Fprintln(os.Stderr, "tcpsend:", err)
		os.Exit(1)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		fmt.Fprintln(os.Stderr, "tcpsend:", err)
		os.Exit(1)
	}
	conn.Close()
}
