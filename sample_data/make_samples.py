#!/usr/bin/env python3
"""Writes the JSONL files of tunelab's sample datasets.

    python3 sample_data/make_samples.py

Deterministic: one fixed seed and hand-written content, so a rerun writes byte-identical
files. Standard library only. The checks live in check_samples.py (it imports build()
from here to compare the files on disk with a fresh build and to know what each
preference pair's rejected answer was meant to get wrong).

Files written:
    camara_qod/sft.jsonl  camara_qod/eval.jsonl  camara_qod/preference.jsonl
    oilgas/sft.jsonl      oilgas/eval.jsonl      oilgas/preference.jsonl
    edu/sft.jsonl
    bgp/sft.jsonl
(schema.json, config.toml and the READMEs are hand-written files, not generated.)
"""

import ipaddress
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240521

# =====================================================================================
# CAMARA Quality-on-Demand: POST /sessions body
# =====================================================================================

KEY_ORDER = ["device", "applicationServer", "devicePorts", "applicationServerPorts",
             "qosProfile", "duration"]

# (iso, name used in national format, country code, national significant number length,
#  leading digits of the NSN, international grouping, trunk prefix or None, national grouping
#  of trunk+NSN or None)
COUNTRIES = [
    ("ES", "Spain", "34", 9, ["6", "7"], [3, 3, 3], None, None),
    ("DE", "Germany", "49", 11, ["151", "152", "160", "170", "176"], [4, 7], "0", [5, 7]),
    ("FR", "France", "33", 9, ["6", "7"], [1, 2, 2, 2, 2], "0", [2, 2, 2, 2, 2]),
    ("IT", "Italy", "39", 10, ["32", "33", "34", "38"], [3, 3, 4], None, None),
    ("GB", "UK", "44", 10, ["7700900"], [4, 6], "0", [5, 6]),
    ("US", "US", "1", 10, ["212", "415", "312", "617", "206"], [3, 3, 4], None, None),
    ("CA", "Canada", "1", 10, ["416", "604", "514"], [3, 3, 4], None, None),
    ("BR", "Brazil", "55", 11, ["119", "219", "319"], [2, 5, 4], None, None),
    ("IN", "India", "91", 10, ["98", "97", "90", "88", "70"], [5, 5], None, None),
    ("JP", "Japan", "81", 10, ["90", "80", "70"], [2, 4, 4], "0", [3, 4, 4]),
    ("AU", "Australia", "61", 9, ["4"], [3, 3, 3], "0", [4, 3, 3]),
    ("MX", "Mexico", "52", 10, ["55", "33", "81"], [2, 4, 4], None, None),
    ("NL", "Netherlands", "31", 9, ["6"], [1, 8], "0", [2, 8]),
    ("SE", "Sweden", "46", 9, ["70", "72", "73", "76"], [2, 3, 2, 2], "0", [3, 3, 2, 2]),
    ("PL", "Poland", "48", 9, ["5", "6", "7", "8"], [3, 3, 3], None, None),
    ("PT", "Portugal", "351", 9, ["91", "92", "93", "96"], [3, 3, 3], None, None),
    ("IE", "Ireland", "353", 9, ["83", "85", "86", "87"], [2, 3, 4], "0", [3, 3, 4]),
    ("SG", "Singapore", "65", 8, ["8", "9"], [4, 4], None, None),
    ("KR", "South Korea", "82", 10, ["10"], [2, 4, 4], "0", [3, 4, 4]),
    ("NG", "Nigeria", "234", 10, ["80", "81", "70", "90"], [3, 3, 4], None, None),
    ("AE", "UAE", "971", 9, ["50", "52", "55", "56"], [2, 3, 4], None, None),
    ("TR", "Turkey", "90", 10, ["53", "54", "55"], [3, 3, 2, 2], None, None),
    ("FI", "Finland", "358", 9, ["40", "50"], [2, 3, 4], None, None),
    ("NO", "Norway", "47", 8, ["4", "9"], [3, 2, 3], None, None),
    ("DK", "Denmark", "45", 8, ["2", "3", "5"], [2, 2, 2, 2], None, None),
    ("CH", "Switzerland", "41", 9, ["76", "77", "78", "79"], [2, 3, 2, 2], None, None),
    ("AT", "Austria", "43", 10, ["664", "676", "699"], [3, 7], None, None),
    ("BE", "Belgium", "32", 9, ["47", "48", "49"], [3, 2, 2, 2], None, None),
    ("CZ", "Czechia", "420", 9, ["6", "7"], [3, 3, 3], None, None),
    ("GR", "Greece", "30", 10, ["69"], [3, 3, 4], None, None),
    ("NZ", "New Zealand", "64", 9, ["21", "22", "27"], [2, 3, 4], None, None),
    ("CL", "Chile", "56", 9, ["9"], [1, 4, 4], None, None),
    ("CO", "Colombia", "57", 10, ["30", "31", "32"], [3, 3, 4], None, None),
    ("AR", "Argentina", "54", 11, ["911"], [1, 2, 4, 4], None, None),
    ("EG", "Egypt", "20", 10, ["10", "11", "12"], [2, 4, 4], None, None),
    ("KE", "Kenya", "254", 9, ["7"], [3, 3, 3], None, None),
    ("PH", "Philippines", "63", 10, ["9"], [3, 3, 4], None, None),
    ("ID", "Indonesia", "62", 10, ["81"], [3, 3, 4], None, None),
    ("TH", "Thailand", "66", 9, ["8", "9"], [2, 3, 4], None, None),
    ("VN", "Vietnam", "84", 9, ["9", "3"], [2, 3, 4], None, None),
    ("ZA", "South Africa", "27", 9, ["7", "8"], [2, 3, 4], None, None),
    ("MA", "Morocco", "212", 9, ["6"], [3, 2, 2, 2], None, None),
]

DOC_NETS_V4 = ["192.0.2", "198.51.100", "203.0.113"]
# a few ordinary-looking public prefixes for variety (addresses are made up)
OTHER_NETS_V4 = ["84.17", "145.40", "62.210", "91.198", "185.12", "176.31", "37.120", "5.28"]

# (phrase as the user says it, seconds)
DURATIONS = [
    ("30 minutes", 1800), ("half an hour", 1800), ("an hour", 3600), ("1 hour", 3600),
    ("one hour", 3600), ("2 hours", 7200), ("two hours", 7200), ("90 minutes", 5400),
    ("an hour and a half", 5400), ("1.5 hours", 5400), ("90 seconds", 90),
    ("45 minutes", 2700), ("45 min", 2700), ("three quarters of an hour", 2700),
    ("15 minutes", 900), ("a quarter of an hour", 900), ("10 minutes", 600),
    ("10 mins", 600), ("5 minutes", 300), ("20 min", 1200), ("two hours and 15 minutes", 8100),
    ("2h15m", 8100), ("2 h 30 min", 9000), ("three hours", 10800), ("3h", 10800),
    ("4 hours", 14400), ("six hours", 21600), ("8 hours", 28800), ("12 hours", 43200),
    ("24 hours", 86400), ("a full day", 86400), ("600 seconds", 600), ("300 s", 300),
    ("7200 seconds", 7200), ("40 minutes", 2400), ("25 minutes", 1500),
    ("one hour and 20 minutes", 4800), ("1h 45m", 6300), ("75 minutes", 4500),
    ("two and a half hours", 9000), ("3.5 hours", 12600), ("an hour and ten minutes", 4200),
    ("120 seconds", 120), ("1 minute", 60), ("a minute and a half", 90), ("5 hours", 18000),
    ("50 minutes", 3000), ("35 mins", 2100), ("2 hrs", 7200), ("1 hr", 3600),
    ("18 hours", 64800), ("ninety minutes", 5400), ("forty-five minutes", 2700),
    ("twenty minutes", 1200), ("an hour and 45 minutes", 6300), ("3 hours 20 minutes", 12000),
    ("4h30", 16200), ("half a day", 43200), ("45 seconds", 45), ("1h", 3600),
    ("thirty minutes", 1800), ("55 min", 3300), ("2.5 hrs", 9000), ("one and a half hours", 5400),
]


# Plausible session lengths per profile (seconds), so that e.g. a video call is not booked for
# a full day or a football match for one minute. Every phrase above fits at least one profile.
PLAUSIBLE = {"E": (300, 28800), "S": (600, 86400), "L": (600, 14400), "M": (45, 86400)}


def minute_phrase(phrase, secs):
    """Phrases usable for the 'duration left in minutes' mistake: whole minutes, not said in seconds."""
    low = phrase.lower()
    return secs % 60 == 0 and "sec" not in low and not low.endswith(" s")


def T(prof, dev, srv, text, dp=None, sp=None, k=None, ex=None):
    """One hand-written request. prof: QOS_ letter; dev: ph|v4|v6; srv: 4|6|c (v4 CIDR)|6p (v6
    prefix); dp/sp: device / application-server ports ([list] or (from, to)); k: the mistake of
    the rejected answer (preference only); ex: the extra field for k='extra'."""
    return dict(prof=prof, dev=dev, srv=srv, text=text, dp=dp, sp=sp, k=k, ex=ex)


SFT_T = [
    # ---- QOS_E: gaming, VR/AR, ultra-low latency
    T("E", "ph", "4", "I'm about to jump into a ranked match on a cloud gaming service from my phone, {dev}. Game server is {srv}. Can you keep latency low for {dur}?"),
    T("E", "ph", "4", "need qos for cloud gaming. phone {dev}, server {srv}, {dur}"),
    T("E", "v4", "6", "Could you create a Quality-on-Demand session so the VR headset at public IP {dev} gets a steady, low-latency link to our render server {srv}? The session should run for {dur}."),
    T("E", "ph", "4", "Esports scrim tonight. Device {dev}, game backend {srv}; the console client talks on {dp}. Keep it up {dur}.", dp=[3074]),
    T("E", "v6", "4", "The AR glasses on {dev} pull 3D overlays from the edge node {srv} during a factory walkthrough. Give them the lowest-latency profile for {dur}."),
    T("E", "ph", "4", "Multiplayer shooter, server {srv} listening on {sp}. Subscriber {dev}. Make it last {dur}.", sp=(27015, 27030)),
    T("E", "ph", "4", "hey can u make my gaming smoother?? my num is {dev}, the server's {srv}, for like {dur}"),
    T("E", "v4", "4", "Request ultra-low-latency connectivity. UE public address: {dev}. Application server: {srv}. Time window: {dur}. Purpose: cloud-rendered VR walkthrough of a building design."),
    T("E", "ph", "6", "Mixed-reality training for trainee surgeons starts soon. The headset is on the line {dev} and the holographic content comes from {srv}. We need it for {dur}, latency has to be minimal."),
    T("E", "ph", "4", "My racing sim sends steering inputs to {srv} and every millisecond counts. Phone: {dev}. Duration: {dur}."),
    T("E", "v4", "4", "Set up a session for a mobile battle-royale tournament: player device {dev}, match server {srv}, game traffic on {dp} on the phone side, {dur}.", dp=(7000, 7100)),
    T("E", "ph", "c", "Please prioritise latency for my VR fitness game. My number is {dev}; the game's servers sit in {srv}. Should take {dur}."),
    T("E", "v6", "6", "gamer here, playing on {dev} vs server {srv}. lag is killing me. fix it for {dur} pls"),
    T("E", "ph", "4", "Can you book the gaming profile for {dev} towards {srv} for {dur}? It's a bullet-chess tournament and every tick matters."),
    T("E", "ph", "4", "For the location-based AR game demo at the park, the demo phone is {dev} and the game server is {srv}. We'll run it for {dur}."),
    T("E", "v4", "4", "Our trading terminal needs ultra-low latency to the exchange gateway {srv}, which listens on {sp}. The tablet's public IP is {dev}. Book it for {dur}.", sp=[9443]),
    T("E", "ph", "4", "Low latency needed: haptic VR glove demo, device {dev}, simulation host {srv}, {dur}, UDP {dp} on the device.", dp=[5005, 5006]),
    T("E", "v6", "6", "Is it possible to get a latency-optimised session for {dev}? It renders game frames on {srv} (cloud gaming, obviously) for roughly {dur}."),
    T("E", "ph", "4", "Kid's got a VR arcade birthday party; headset line {dev}, arcade server {srv}. {dur}, please."),
    T("E", "ph", "4", "qos_e for {dev} -> {srv}, {dur}"),
    T("E", "v4", "4", "Our fighting-game netcode uses rollback, but we still want the best possible latency. Player at {dev}, relay at {srv} listening on {sp}, run time {dur}.", sp=[7777]),
    T("E", "ph", "4", "I'd like to reserve a low-latency connection for an online rhythm game session. Number {dev}, server {srv}, length {dur}."),
    T("E", "ph", "6", "Please set up QoS: the AR museum guide on {dev} needs snappy responses from {srv} for {dur}."),
    T("E", "v4", "c", "Cloud gaming on a TV stick. Public IP of the stick: {dev}. Provider's server range: {srv}. Gonna play {dur}."),
    T("E", "ph", "4", "Boost please!! Fortnite-style match on {dev}, server {srv}, about {dur}"),
    T("E", "ph", "4", "Could you arrange minimal jitter and latency for a VR flight-simulator lesson? Trainee headset: {dev}. Sim server: {srv}, which uses {sp}. Lesson length: {dur}.", sp=(5500, 5510)),
    T("E", "v6", "4", "We are testing cloud XR rendering on {dev}; frames come from {srv}. Need stable ultra-low latency for {dur}."),
    T("E", "ph", "4", "Game night! Phone {dev}, server {srv}, {dp} on the phone, {dur}.", dp=[3659]),
    T("E", "v4", "6", "AR headset at public address {dev} renders remotely on {srv}; keep motion-to-photon latency low for {dur}."),
    # ---- QOS_S: video streaming, broadcast uploads
    T("S", "ph", "4", "I'm live streaming a concert from my phone ({dev}) to our ingest server at {srv}. Please secure the uplink for {dur}."),
    T("S", "v4", "4", "News crew needs to upload a broadcast feed: encoder public IP {dev}, newsroom ingest {srv}, SRT on {sp} at the ingest, {dur}.", sp=[9000]),
    T("S", "ph", "4", "want to watch the champions league final in 4K without buffering. phone {dev}, streaming server {srv}, match lasts {dur}"),
    T("S", "ph", "c", "Please create a QoS session for video streaming on {dev}. The CDN nodes are in {srv}. Duration {dur}."),
    T("S", "v6", "6", "Our outside-broadcast van at {dev} sends the contribution feed for the marathon to {srv}. Book throughput for {dur}."),
    T("S", "ph", "4", "I stream on Twitch from my phone sometimes, and tonight's IRL stream runs {dur}. Number is {dev}, ingest endpoint {srv}, RTMP on {sp}.", sp=[1935]),
    T("S", "ph", "4", "Set up broadcast-upload QoS: device {dev}, ingest {srv}, {dur}."),
    T("S", "v4", "4", "We livestream the Sunday church service to relatives abroad. The streaming laptop's public IP is {dev}, the platform's ingest server is {srv}. Service takes {dur}."),
    T("S", "ph", "4", "Could you make sure my tablet ({dev}) can watch the film stream from {srv} without drops for {dur}?"),
    T("S", "ph", "4", "Press conference footage has to go up to the newsroom server {srv} from the reporter's phone {dev}: raw video upload, {dur}."),
    T("S", "v4", "c", "IPTV on the hotel tablet {dev}; head-end range {srv}; the player app on the tablet receives on {dp}; keep it smooth for {dur}.", dp=[5500]),
    T("S", "ph", "6", "im broadcasting my kids footbal game live for the grandparents. phone {dev}, platform server {srv}. match is {dur}"),
    T("S", "v6", "4", "Requesting a streaming profile for the stadium replay app on {dev}, replay server {srv}, for {dur}."),
    T("S", "ph", "4", "Please prioritise video throughput: live auction stream going out from {dev} to {srv}, {dur}, encoder pushes to {sp} on the server.", sp=(8000, 8010)),
    T("S", "ph", "4", "Our esports team isn't playing today, we're only broadcasting the match to viewers. Camera phone {dev}, ingest {srv}, {dur}."),
    T("S", "v4", "4", "Live video from a gimbal camera at a mountain bike race, sent from {dev} to the production server {srv}, for {dur}."),
    T("S", "ph", "4", "Can I get a video-streaming boost on {dev}? I'm binge-watching a series from {srv} for {dur}."),
    T("S", "ph", "4", "Stream upload, UE {dev}, AS {srv}, device side {dp}, {dur}", dp=(6970, 6980)),
    T("S", "v6", "6", "Hi! Our podcast goes out as a live video stream tonight. The studio uplink is {dev}, the streaming server is {srv}. Runs {dur}."),
    T("S", "ph", "4", "A reporter will file live video from the flood zone for {dur}. Her handset: {dev}. Broadcast gateway: {srv}."),
    T("S", "v4", "6", "Please reserve bandwidth for the live broadcast of the council meeting (one-way, no remote participants): encoder {dev}, platform {srv}, {dur}."),
    T("S", "ph", "4", "watchin a live stream of the F1 race on {dev} from {srv}, race is {dur}, no buffering plz"),
    T("S", "ph", "4", "We'll be uploading a live feed of the wedding ceremony so guests abroad can watch. Phone {dev}, server {srv}; the server side uses {sp}; {dur}.", sp=(4000, 4010)),
    T("S", "v4", "4", "Throughput priority for an HLS video stream: player at {dev}, origin {srv}, {dur}."),
    T("S", "ph", "c", "My son's school concert will be streamed live from my phone {dev}; the streaming service uses {srv}. It's {dur} long."),
    T("S", "v6", "4", "Configure QoS for a live sports broadcast upload from {dev} to the rights-holder's ingest {srv} lasting {dur}."),
    T("S", "ph", "4", "Video on demand session, please: {dev} watching from {srv}. {dur}."),
    T("S", "ph", "4", "How do I make my live video upload to {srv} rock-solid? I'm on {dev} and the stream runs {dur}."),
    # ---- QOS_L: live interactive video calls, conferences, classes
    T("L", "ph", "4", "I have a video call with my grandma in Canada tonight. My number is {dev}; the call goes through {srv}. Should last {dur}."),
    T("L", "v4", "4", "Please set up QoS for an interactive video conference: laptop public IP {dev}, conferencing server {srv}, {dur}."),
    T("L", "ph", "4", "Telehealth consultation with a patient at {dev}; the clinic's video platform is {srv}. Consultation slot: {dur}."),
    T("L", "ph", "6", "online maths class for my daughter, she's on {dev}, the class platform is {srv}, class is {dur}"),
    T("L", "v6", "4", "Job interview over video in ten minutes! Device {dev}, meeting server {srv}. Interview length {dur}. WebRTC media on {dp} on my side.", dp=(49152, 49200)),
    T("L", "ph", "4", "Board meeting via video conference, chairman dials in from {dev}; conference bridge {srv}; {dur}."),
    T("L", "ph", "4", "Could you improve my Zoom-style team stand-up? Phone {dev}, server {srv}, {dur}."),
    T("L", "v4", "c", "Virtual classroom, students ask questions live on camera. Teacher's device: {dev}. Platform range: {srv}. Lesson: {dur}."),
    T("L", "ph", "4", "Sign-language video relay call for a deaf customer on {dev} via the relay service {srv}, expected {dur}. Needs smooth two-way video."),
    T("L", "ph", "4", "Remote court hearing by video. Witness phone {dev}, court video platform {srv}, media relay on {sp} at the platform, {dur}.", sp=[3478, 3479]),
    T("L", "v4", "4", "pls help, my video calls keep freezing. laptop ip {dev}, call server {srv}, got a meeting now that lasts {dur}"),
    T("L", "ph", "4", "I'm teaching a live yoga class over video, participants see me and I see them. My phone: {dev}. Platform: {srv}. Class duration {dur}."),
    T("L", "v6", "6", "Set up a conferencing profile for {dev} talking to {srv} for {dur}."),
    T("L", "ph", "4", "Parent-teacher meeting on video from my phone {dev}. School's meeting server: {srv}. Please hold it for {dur}."),
    T("L", "ph", "4", "Hi, I'm a language tutor. Lessons are two-way video calls from {dev} through {srv}. Next lesson runs {dur}."),
    T("L", "v4", "4", "Remote customer-support video session: the agent app connects the customer's phone at {dev} to {srv}, {dur}, media on {sp} at the server.", sp=(10000, 10100)),
    T("L", "ph", "4", "Doctor's video appointment: my number {dev}, hospital platform {srv}, {dur}. Can you make the video stable?"),
    T("L", "ph", "6", "Video interpreter call for a hospital patient. Handset {dev}, interpreting service {srv}, {dur}."),
    T("L", "v4", "4", "Live interactive lecture with Q&A: lecturer laptop {dev}, university video platform {srv}, lecture time {dur}."),
    T("L", "ph", "4", "Famliy video chat for the hoildays from {dev} to {srv}, we'll be on for {dur}."),
    T("L", "ph", "4", "Sales demo over video with a client. My phone {dev}, the meeting service at {srv}. {dur}. Make sure the video doesn't stutter."),
    T("L", "v6", "4", "We run a virtual open day: prospective students chat with staff on camera. Staff device {dev}, platform {srv}, {dur}."),
    T("L", "ph", "4", "Conferense call w/ video, {dev}, srv {srv}, {dur}, thx"),
    T("L", "ph", "c", "I'll be running a remote tutoring session with webcam on both ends. The tutor's phone is {dev}, the platform servers are {srv}. Session: {dur}."),
    T("L", "v4", "4", "Please configure a QoS session for a two-way video consultation with a vet: device {dev}, clinic server {srv}, video on {dp} at the device, {dur}.", dp=[5004]),
    T("L", "ph", "4", "My team does a daily video sync with the Tokyo office. I'm on {dev}; our conferencing SFU is {srv}; it takes {dur}."),
    T("L", "v4", "4", "Create a session: two-way video classroom, student device {dev}, platform {srv}, {dur}."),
    # ---- QOS_M: IoT, sensors, telemetry, mission-critical machine traffic
    T("M", "v4", "4", "Smart meters in the building report to the head-end {srv} over MQTT on {sp}. The gateway's public IP is {dev}. Keep the telemetry flowing for {dur}.", sp=[8883]),
    T("M", "ph", "4", "Fleet telemetry: van tracker SIM {dev} sends GPS and engine data to {srv}. Please prioritise it for {dur}."),
    T("M", "v6", "6", "Industrial sensors on a wind turbine, gateway {dev}, SCADA server {srv}, {dur}."),
    T("M", "ph", "4", "The soil-moisture sensor hub on the farm uses the SIM {dev} and reports to {srv}. Reliable connectivity for {dur}, please."),
    T("M", "v4", "4", "Connected ambulance en route: the vital-signs monitor at {dev} sends patient telemetry to the hospital system {srv}. This is mission-critical, {dur}."),
    T("M", "ph", "4", "PLC traffic from the bottling line must not be delayed. Modem {dev}, control server {srv}, Modbus/TCP {sp} on the server, {dur}.", sp=[502]),
    T("M", "ph", "4", "iot sensr qos: sim {dev}, broker {srv}, {dur}"),
    T("M", "v4", "c", "Pipeline pressure sensors along the valley report through a router with public IP {dev} to our monitoring cluster {srv}. Need reliable delivery for {dur}."),
    T("M", "ph", "6", "Drone flight telemetry (position, battery, attitude) from the controller SIM {dev} to the ground station {srv}. Flight: {dur}."),
    T("M", "v6", "4", "Cold-chain temperature loggers in the reefer truck, gateway {dev}, backend {srv}, CoAP on {dp} at the gateway, {dur}.", dp=[5683]),
    T("M", "ph", "4", "Please create a session for our AGV fleet controller: the warehouse gateway SIM is {dev}, the fleet manager is {srv}, {dur}. Machine control traffic, mission-critical."),
    T("M", "v4", "4", "Air-quality sensors around the school report to {srv}; their LTE router has public IP {dev}. Reserve {dur}."),
    T("M", "ph", "4", "Elevator monitoring unit {dev} must keep reporting to {srv} during the inspection, {dur}."),
    T("M", "ph", "4", "Water utility SCADA: remote pumping station modem {dev}, SCADA master {srv}, DNP3 {sp} on the master, {dur}.", sp=[20000]),
    T("M", "v6", "6", "Substation telemetry to the grid control centre: RTU at {dev}, control centre {srv}, {dur}. Treat as mission-critical."),
    T("M", "ph", "4", "Test drive with OBD telemetry logging. Car SIM {dev}, data collector {srv}, drive lasts {dur}."),
    T("M", "v4", "4", "Our wearable remote-patient-monitoring hub (public IP {dev}) uploads heart-rate and SpO2 readings to {srv}. Please keep it reliable for {dur}."),
    T("M", "ph", "4", "Smart parking sensors -> {srv}, gateway SIM {dev}, {dur}, MQTT {dp} on the gateway", dp=[1883]),
    T("M", "ph", "c", "Mining haul trucks send telemetry from SIM {dev} to the dispatch servers in {srv}. Shift is {dur}."),
    T("M", "v4", "4", "Port crane load sensors report to {srv} from the crane's router {dev}. Operations window: {dur}."),
    T("M", "ph", "4", "Traffic light controller at the junction uses {dev} to talk to the city traffic centre {srv}; keep that link prioritised for {dur}."),
    T("M", "v6", "4", "Wellhead pressure and flow sensors on the offshore platform send readings from {dev} to the onshore historian {srv}, OPC UA on {sp} at the historian, {dur}.", sp=[4840]),
    T("M", "ph", "4", "hey, our vending machines' telemetry SIM {dev} keeps dropping reports to {srv}. can you give it priority for {dur}?"),
    T("M", "ph", "4", "Railway level-crossing status messages from {dev} to the signalling centre {srv}: safety-relevant machine traffic, {dur}."),
    T("M", "v4", "6", "Environmental monitoring buoy, public address {dev}, data server {srv}. It reports every minute; cover {dur}."),
    T("M", "ph", "4", "Irrigation controllers on the vineyard use SIM {dev} to get commands from {srv}. Keep the link solid for {dur}."),
    T("M", "v4", "4", "Telemetry from the weather station (public IP {dev}) to {srv} must arrive on time. Period: {dur}."),
]

EVAL_T = [
    T("E", "ph", "4", "Book a low-latency session for online gaming: phone {dev}, game server {srv}, {dur}."),
    T("E", "v4", "6", "My VR headset ({dev}) connects to the cloud renderer at {srv}. I need {dur} of low latency."),
    T("E", "v6", "4", "ar glasses demo, ip {dev}, server {srv}, {dur}, udp {dp} on the glasses", dp=[9100]),
    T("E", "ph", "4", "Could you give {dev} the gaming profile for {dur}? The match server is {srv} and it listens on {sp}.", sp=(27000, 27010)),
    T("E", "ph", "c", "Competitive mobile game with my friends; my line is {dev}, the servers are {srv}; we'll play for {dur}."),
    T("E", "v4", "4", "Latency-critical cloud gaming on a laptop at public IP {dev} to {srv}, {dur}."),
    T("E", "ph", "6", "Multiplayer VR escape room: headset {dev}, room server {srv}, {dur}."),
    T("S", "ph", "4", "I want to stream a live football match in HD on {dev} from {srv} for {dur}."),
    T("S", "v4", "4", "Broadcast upload from the reporter's device at {dev} to ingest {srv}, {dur}, SRT on {sp} at the ingest.", sp=[10080]),
    T("S", "ph", "4", "Live streaming our band's gig from {dev} to {srv}, set lasts {dur}."),
    T("S", "v6", "6", "video streaming qos, device {dev}, cdn {srv}, {dur}"),
    T("S", "ph", "4", "Please boost my movie stream, it keeps bufferring: tablet {dev}, server {srv}, {dur}."),
    T("S", "ph", "c", "Our camera phone {dev} pushes a live broadcast of the regatta to {srv} for {dur}."),
    T("S", "v4", "4", "The livestream of the graduation ceremony goes from {dev} to {srv}; it takes {dur}."),
    T("L", "v4", "4", "Set up a video conference for my laptop at {dev} with the meeting server {srv} for {dur}."),
    T("L", "ph", "6", "onlne class on vidoe, student phone {dev}, platform {srv}, {dur}"),
    T("L", "ph", "4", "I've got a telemedicine video call at {dev} through {srv} lasting {dur}; can you stabilise it?"),
    T("L", "ph", "4", "Weekly team video meeting, my phone is {dev}, the bridge is {srv}, it runs {dur}, WebRTC media on {dp} on my phone.", dp=(50000, 50100)),
    T("L", "v6", "4", "Two-way video tutoring from {dev} via {srv} for {dur}, please."),
    T("L", "ph", "4", "Video call with a client from {dev}; conferencing server {srv}; {dur}."),
    T("L", "v4", "c", "Live seminar where every student is on camera and talks: lecturer device {dev}, platform {srv}, {dur}."),
    T("L", "ph", "4", "Grandparents' video call on {dev} through {srv} for {dur}."),
    T("M", "v4", "4", "IoT sensors on a bridge report strain data from gateway {dev} to {srv}; keep it reliable for {dur}."),
    T("M", "ph", "4", "Telemetry from our delivery robots' SIM {dev} to fleet server {srv}, {dur}."),
    T("M", "v4", "4", "Smart meter gateway at {dev}, MQTT broker {srv} on {sp}, {dur}.", sp=[1883]),
    T("M", "ph", "6", "Mission-critical machine traffic: factory robot controller {dev} to MES server {srv}, {dur}."),
    T("M", "ph", "4", "Greenhouse climate sensors on SIM {dev} report to {srv} for {dur}."),
    T("M", "v6", "6", "Fire-alarm panel {dev} sends status to the monitoring centre {srv}; prioritise for {dur}."),
    T("M", "v4", "4", "Flood-level sensors along the river, router public IP {dev}, server {srv}, {dur}."),
    T("M", "ph", "4", "Vehicle telematics unit {dev} sending CAN-bus data to {srv}, {dur}."),
]

PREF_T = [
    # rejected = wrong qosProfile for the use case
    T("E", "ph", "4", "Please prioritise my cloud gaming session on {dev}; server {srv}; {dur}.", k="profile"),
    T("S", "v4", "4", "Live stream of the school play from {dev} to {srv}, {dur}.", k="profile"),
    T("L", "ph", "4", "Video call with my doctor from {dev} via {srv}, {dur}.", k="profile"),
    T("M", "ph", "4", "Our beehive weight sensors report via SIM {dev} to {srv}; {dur} please.", k="profile"),
    T("E", "v6", "6", "VR headset {dev}, render node {srv}, ultra-low latency, {dur}.", k="profile"),
    T("S", "ph", "4", "Streaming a live cooking show from my kitchen ({dev}) to {srv} for {dur}.", k="profile"),
    T("L", "v4", "4", "Zoom-style all-hands meeting, laptop {dev}, server {srv}, {dur}.", k="profile"),
    T("M", "v4", "c", "Factory vibration sensors behind router {dev} push data to the analytics cluster {srv} for {dur}.", k="profile"),
    T("E", "ph", "4", "Racing game tournament final! Phone {dev}, server {srv}, {dur}.", k="profile"),
    T("L", "ph", "6", "Remote university seminar, I present and discuss on camera. Phone {dev}, platform {srv}, {dur}.", k="profile"),
    T("S", "v6", "4", "Watching a live rugby stream on {dev} from {srv} for {dur}.", k="profile"),
    T("M", "ph", "4", "Ambulance patient-monitor telemetry from {dev} to the ER system {srv}, mission-critical, {dur}.", k="profile"),
    # rejected = duration left in minutes
    T("E", "ph", "4", "Give my gaming phone {dev} low latency to {srv} for {dur}.", k="dur"),
    T("S", "v4", "4", "Broadcast upload from {dev} to {srv}, duration {dur}.", k="dur"),
    T("L", "ph", "4", "I'm hosting a video class from {dev} on {srv}; it lasts {dur}.", k="dur"),
    T("M", "v6", "6", "Telemetry from gateway {dev} to {srv}, {dur}.", k="dur"),
    T("E", "ph", "c", "AR treasure-hunt game on {dev}, backend {srv}, {dur}.", k="dur"),
    T("S", "ph", "4", "Live music stream going out from {dev} to {srv} for {dur}.", k="dur"),
    T("L", "v4", "4", "Two-way video therapy session: client device {dev}, platform {srv}, {dur}.", k="dur"),
    T("M", "ph", "4", "Livestock collar trackers on SIM {dev} report to {srv}; cover {dur}.", k="dur"),
    T("E", "v4", "4", "Cloud VR game, device {dev}, server {srv}, needs {dur}.", k="dur"),
    T("L", "ph", "4", "Video call with my brother overseas: {dev} via {srv}, {dur}.", k="dur"),
    # rejected = prose or code fences around the JSON
    T("E", "ph", "4", "Set up low-latency QoS for an online card game tournament, phone {dev}, server {srv}, {dur}.", k="prose"),
    T("S", "ph", "4", "Uploading a live broadcast from the stadium: {dev} to {srv}, {dur}.", k="prose"),
    T("L", "v4", "4", "Video conference for the design review: {dev} to {srv}, {dur}.", k="prose"),
    T("M", "ph", "4", "Sensor gateway {dev} reporting to {srv}, {dur}, MQTT {sp} on the broker.", sp=[8883], k="prose"),
    T("E", "v6", "4", "Cloud gaming console at {dev} needs low lag to {srv} for {dur}.", k="prose"),
    T("S", "v4", "6", "Please prioritise the 4K stream to my TV box {dev} from {srv} for {dur}.", k="prose"),
    T("L", "ph", "4", "Telehealth video visit from {dev} to the clinic server {srv}, {dur}.", k="prose"),
    T("M", "v4", "4", "Grid telemetry from RTU {dev} to control centre {srv}, {dur}.", k="prose"),
    T("E", "ph", "4", "VR multiplayer arena, headset line {dev}, server {srv}, game traffic on {dp} at the headset, {dur}.", dp=(9000, 9010), k="prose"),
    T("S", "ph", "c", "Live stream of the charity run from {dev} to the platform range {srv}, {dur}.", k="prose"),
    T("L", "v6", "6", "Live online class with cameras on, teacher device {dev}, server {srv}, {dur}.", k="prose"),
    T("M", "ph", "4", "Asset trackers on shipping containers, SIM {dev}, tracking server {srv}, {dur}.", k="prose"),
    # rejected = an extra field the API body does not have
    T("E", "ph", "4", "I want top priority and low latency for my game on {dev} vs {srv}, {dur}.", k="extra", ex=("priority", "high")),
    T("S", "v4", "4", "Stream at 20 Mbps from {dev} to {srv} for {dur}.", k="extra", ex=("bandwidth", "20Mbps")),
    T("L", "ph", "4", "Name the session 'weekly-sync': video conference from {dev} to {srv}, {dur}.", k="extra", ex=("sessionName", "weekly-sync")),
    T("M", "ph", "6", "Sensor telemetry, SIM {dev}, server {srv}, {dur}, latency under 50 ms.", k="extra", ex=("maxLatencyMs", 50)),
    T("E", "v6", "4", "AR glasses {dev}, edge server {srv}, {dur}, and tell me when it ends.", k="extra", ex=("notifyOnEnd", True)),
    T("S", "ph", "4", "Live stream upload {dev} to {srv}, {dur}, on the 5G slice if you can.", k="extra", ex=("networkSlice", "eMBB")),
    T("L", "v4", "c", "Video classroom from {dev} to {srv}, {dur}, start right away.", k="extra", ex=("startTime", "now")),
    T("M", "v4", "4", "Mission-critical PLC traffic from {dev} to {srv}, {dur}, highest priority.", k="extra", ex=("priority", 1)),
    T("E", "ph", "4", "Cloud gaming over UDP, {dev} to {srv}, {dur}.", k="extra", ex=("protocol", "UDP")),
    T("L", "ph", "4", "Interview on video from {dev} via {srv}, {dur}, and keep the jitter down.", k="extra", ex=("maxJitterMs", 30)),
    # rejected = phone number not in E.164
    T("E", "ph", "4", "Gaming session for my phone {dev}; the match runs on {srv}; about {dur}.", k="phone"),
    T("S", "ph", "4", "Live video upload from {dev} to {srv} for {dur}, it's a street parade.", k="phone"),
    T("L", "ph", "6", "Video call from {dev} with the architects; their meeting server is {srv}; {dur}.", k="phone"),
    T("M", "ph", "4", "Telemetry SIM {dev} reporting tank levels to {srv}, {dur}.", k="phone"),
    T("E", "ph", "c", "VR arcade headset on {dev}, arcade servers in {srv}, a session of {dur}.", k="phone"),
    T("S", "ph", "4", "Stream a live basketball game from {dev} to the ingest {srv}, {dur}.", k="phone"),
    T("L", "ph", "4", "Remote class with two-way video for my nephew, phone {dev}, platform {srv}, {dur}.", k="phone"),
    T("M", "ph", "4", "Parking sensor gateway on {dev} sends occupancy to {srv} for {dur}.", k="phone"),
    T("E", "ph", "4", "Low-latency mobile shooter on {dev}, match server {srv}, {dur}, thanks!", k="phone"),
    T("L", "ph", "4", "Telemedicine follow-up on video: patient phone {dev}, clinic {srv}, {dur}.", k="phone"),
    # rejected = device ipv4Address as a bare string
    T("E", "v4", "4", "Public IP {dev} is my gaming PC's; game server {srv}; please lower latency for {dur}.", k="ipv4"),
    T("S", "v4", "4", "Streaming encoder with public address {dev} sends to {srv} for {dur}.", k="ipv4"),
    T("L", "v4", "6", "Video meeting from the office laptop at {dev} to {srv}, {dur}.", k="ipv4"),
    T("M", "v4", "4", "Router {dev} carries our sensor telemetry to {srv}; {dur}.", k="ipv4"),
    T("E", "v4", "c", "VR station at {dev} gets rendered frames from {srv}; ultra-low latency for {dur}.", k="ipv4"),
    T("S", "v4", "4", "Kiosk at {dev} plays a live video stream from {srv} for {dur}.", k="ipv4"),
    T("L", "v4", "4", "Hybrid class: teacher's laptop {dev}, class platform {srv}, two-way video, {dur}.", k="ipv4"),
    T("M", "v4", "4", "SCADA outstation at {dev} to master station {srv}, {dur}, mission-critical.", k="ipv4"),
    T("E", "v4", "4", "Esports booth PC at {dev}, tournament server {srv}, {dur}.", k="ipv4"),
    # rejected = ports as a bare list
    T("E", "ph", "4", "Game client on {dev} uses {dp}; server {srv}; {dur}.", dp=[3074, 3075], k="ports"),
    T("S", "v4", "4", "RTMP stream from {dev} to {srv} on {sp}, {dur}.", sp=[1935], k="ports"),
    T("L", "ph", "4", "Video conference from {dev}, conference server {srv} with media on {sp}, {dur}.", sp=(16384, 16484), k="ports"),
    T("M", "v6", "6", "CoAP sensors behind {dev} talk to {srv} on {sp}, {dur}.", sp=[5683, 5684], k="ports"),
    T("E", "v4", "4", "VR headset {dev} receives frames on {dp} from {srv}, {dur}.", dp=(45000, 45010), k="ports"),
    T("S", "ph", "4", "SRT upload from {dev} to {srv}, ingest listening on {sp}, {dur}.", sp=[9710], k="ports"),
    T("M", "ph", "4", "MQTT telemetry from SIM {dev} to broker {srv} on {sp}, {dur}.", sp=[1883], k="ports"),
    T("L", "v4", "4", "Two-way video lesson from {dev} via {srv}, client media {dp}, {dur}.", dp=[5004, 5005], k="ports"),
    T("E", "ph", "6", "Cloud gaming from {dev} to {srv}, server game traffic on {sp}, {dur}.", sp=(30000, 30100), k="ports"),
]

WRONG_PROFILE = {  # plausible confusions, used in turn
    "QOS_E": ["QOS_S", "QOS_L", "QOS_M"],
    "QOS_S": ["QOS_L", "QOS_E"],
    "QOS_L": ["QOS_S", "QOS_E"],
    "QOS_M": ["QOS_E", "QOS_L"],
}

PROSE = [
    "Sure! Here is the request body for POST /sessions:\n{c}",
    "```json\n{p}\n```",
    "{c}\n\nThis creates a {prof} session for {human}.",
    "Here's your QoD session request:\n\n```json\n{c}\n```\nSend it with POST /sessions.",
    "POST /sessions\n{p}",
    "Request body:\n{c}\nLet me know if you want the ports restricted.",
    "{c} (profile {prof} fits this use case)",
    "Of course. {c}",
]


class Pools:
    """Deterministic sources of identifiers, each used once."""

    def __init__(self, rng):
        self.rng = rng
        self.used = set()
        self.countries = []
        self.durs = []

    def _fresh(self, make):
        for _ in range(1000):
            v = make()
            if v not in self.used:
                self.used.add(v)
                return v
        raise RuntimeError("identifier pool exhausted")

    def country(self):
        if not self.countries:
            self.countries = list(COUNTRIES)
            self.rng.shuffle(self.countries)
        return self.countries.pop()

    def phone(self, no_paren=False):
        rng = self.rng
        spec = self.country()
        iso, name, cc, nlen, prefixes, groups, trunk, natg = spec

        def make():
            p = rng.choice(prefixes)
            if iso in ("US", "CA"):
                return p + "55501" + "%02d" % rng.randrange(100)
            return p + "".join(str(rng.randrange(10)) for _ in range(nlen - len(p)))
        nsn = self._fresh(make)
        styles = ["space"] * 7 + ["compact"] * 4 + ["dash"] * 2 + ["00"] * 2 + ["paren"] * 2
        if trunk or iso in ("US", "CA"):
            styles += ["national"] * 8
        style = rng.choice(styles)
        if no_paren and style in ("paren", "national"):
            style = "space"  # the template already wraps the number in parentheses
        return dict(e164="+" + cc + nsn, display=render_phone(spec, nsn, style), style=style,
                    cc=cc, nsn=nsn)

    def ipv4(self):
        rng = self.rng

        def make():
            if rng.random() < 0.8:
                return "%s.%d" % (rng.choice(DOC_NETS_V4), rng.randrange(1, 255))
            return "%s.%d.%d" % (rng.choice(OTHER_NETS_V4), rng.randrange(0, 256), rng.randrange(1, 255))
        return self._fresh(make)

    def cidr(self):
        rng = self.rng

        def make():
            plen = rng.choice([24, 25, 26, 27, 28, 29])
            size = 2 ** (32 - plen)
            base = ipaddress.IPv4Address(rng.choice(DOC_NETS_V4) + ".0")
            off = rng.randrange(256 // size) * size
            return str(ipaddress.IPv4Network("%s/%d" % (base + off, plen)))
        return self._fresh(make)

    def ipv6(self):
        rng = self.rng

        def make():
            groups = [0x2001, 0xDB8] + [rng.randrange(0x10000) for _ in range(6)]
            z = rng.randrange(2, 6)  # a run of zero groups so the address compresses
            for i in range(z, min(8, z + rng.randrange(1, 4))):
                groups[i] = 0
            for i in range(2, 8):  # some short groups, as people write them
                if groups[i] and rng.random() < 0.4:
                    groups[i] = rng.randrange(1, 0x100)
            return ipaddress.IPv6Address(":".join("%x" % g for g in groups)).compressed
        return self._fresh(make)

    def ipv6_prefix(self):
        rng = self.rng

        def make():
            plen = rng.choice([48, 56, 64])
            groups = [0x2001, 0xDB8, rng.randrange(0x10000), rng.randrange(0x10000)] + [0] * 4
            net = ipaddress.IPv6Network((ipaddress.IPv6Address(":".join("%x" % g for g in groups)), plen),
                                        strict=False)
            return net.compressed
        return self._fresh(make)

    def duration(self, prof, minutes_only=False):
        lo, hi = PLAUSIBLE[prof]
        for _ in range(2):
            if not self.durs:
                self.durs = list(DURATIONS)
                self.rng.shuffle(self.durs)
            for i in range(len(self.durs) - 1, -1, -1):
                ph, s = self.durs[i]
                if lo <= s <= hi and (not minutes_only or minute_phrase(ph, s)):
                    return self.durs.pop(i)
            self.durs = []
        raise RuntimeError("no duration fits")


def group(s, sizes, sep):
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n])
        i += n
    return sep.join(out)


def render_phone(spec, nsn, style):
    iso, name, cc, nlen, prefixes, groups, trunk, natg = spec
    if iso in ("US", "CA"):
        a, b, c = nsn[:3], nsn[3:6], nsn[6:]
        return {"space": "+1 (%s) %s-%s" % (a, b, c), "compact": "+1" + nsn,
                "dash": "+1-%s-%s-%s" % (a, b, c), "00": "001 %s %s %s" % (a, b, c),
                "paren": "(+1) %s %s %s" % (a, b, c),
                "national": "(%s) %s-%s (%s)" % (a, b, c, name)}[style]
    if style == "space":
        return "+%s %s" % (cc, group(nsn, groups, " "))
    if style == "compact":
        return "+%s%s" % (cc, nsn)
    if style == "dash":
        return "+%s-%s" % (cc, group(nsn, groups, "-"))
    if style == "00":
        return "00%s %s" % (cc, group(nsn, groups, " "))
    if style == "paren":
        return "(+%s) %s" % (cc, group(nsn, groups, " "))
    if style == "national":
        return "%s (%s)" % (group(trunk + nsn, natg, " "), name)
    raise ValueError(style)


def render_ports(rng, spec):
    if isinstance(spec, tuple):
        a, b = spec
        form = rng.choice(["ports %d-%d", "ports %d to %d", "port range %d\u2013%d", "ports %d through %d"])
        return form % (a, b), {"ranges": [{"from": a, "to": b}]}
    if len(spec) == 1:
        return "port %d" % spec[0], {"ports": list(spec)}
    if len(spec) == 2:
        form = rng.choice(["ports %d and %d", "ports %d/%d", "ports %d, %d"])
        return form % tuple(spec), {"ports": list(spec)}
    return "ports " + ", ".join(map(str, spec[:-1])) + " and %d" % spec[-1], {"ports": list(spec)}


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def human_duration(secs):
    if secs % 3600 == 0:
        h = secs // 3600
        return "%d hour%s" % (h, "" if h == 1 else "s")
    if secs % 60 == 0:
        return "%d minutes" % (secs // 60)
    return "%d seconds" % secs


def realise(t, pools):
    """Fill one template: returns the prompt, the expected object and what was used."""
    rng = pools.rng
    meta = {}
    if t["dev"] == "ph":
        ph = pools.phone(no_paren="({dev})" in t["text"])
        dev_text, device = ph["display"], {"phoneNumber": ph["e164"]}
        meta["phone"] = ph
    elif t["dev"] == "v4":
        a = pools.ipv4()
        dev_text, device = a, {"ipv4Address": {"publicAddress": a}}
    else:
        a = pools.ipv6()
        dev_text, device = a, {"ipv6Address": a}
    if t["srv"] == "4":
        s = pools.ipv4()
        srv = {"ipv4Address": s}
    elif t["srv"] == "c":
        s = pools.cidr()
        srv = {"ipv4Address": s}
    elif t["srv"] == "6":
        s = pools.ipv6()
        srv = {"ipv6Address": s}
    else:
        s = pools.ipv6_prefix()
        srv = {"ipv6Address": s}
    dur_phrase, secs = pools.duration(t["prof"], minutes_only=(t["k"] == "dur"))
    obj = {"device": device, "applicationServer": srv}
    fill = dict(dev=dev_text, srv=s, dur=dur_phrase, dp="", sp="")
    if t["dp"] is not None:
        fill["dp"], obj["devicePorts"] = render_ports(rng, t["dp"])
    if t["sp"] is not None:
        fill["sp"], obj["applicationServerPorts"] = render_ports(rng, t["sp"])
    obj["qosProfile"] = "QOS_" + t["prof"]
    obj["duration"] = secs
    prompt = t["text"].format(**fill)
    meta.update(dur_phrase=dur_phrase, secs=secs, dev_text=dev_text, srv_text=s, kind=t["k"])
    return prompt, obj, meta


def make_rejected(t, obj, meta, idx, counters):
    """The rejected answer for a preference template: the chosen object with one mistake."""
    k = t["k"]
    bad = json.loads(json.dumps(obj))
    if k == "profile":
        opts = WRONG_PROFILE[obj["qosProfile"]]
        n = counters.setdefault(obj["qosProfile"], 0)
        counters[obj["qosProfile"]] = n + 1
        bad["qosProfile"] = opts[n % len(opts)]
        return compact(bad)
    if k == "dur":
        bad["duration"] = obj["duration"] // 60
        return compact(bad)
    if k == "prose":
        form = PROSE[counters.setdefault("prose", 0) % len(PROSE)]
        counters["prose"] += 1
        return form.format(c=compact(obj), p=json.dumps(obj, ensure_ascii=False, indent=2),
                           prof=obj["qosProfile"], human=human_duration(obj["duration"]))
    if k == "extra":
        key, val = t["ex"]
        out = {}
        at_end = idx % 2 == 0
        for kk, vv in bad.items():
            if kk == "duration" and not at_end:
                out[key] = val
            out[kk] = vv
        if at_end:
            out[key] = val
        return compact(out)
    if k == "phone":
        ph = meta["phone"]
        disp = ph["display"]
        if ph["style"] == "national":
            wrong = "".join(ch for ch in disp.rsplit(" (", 1)[0] if ch.isdigit())
        elif ph["style"] == "compact":
            wrong = ph["e164"][1:]
        elif ph["style"] == "00":
            wrong = "00" + ph["e164"][1:]
        else:
            wrong = disp
        bad["device"]["phoneNumber"] = wrong
        return compact(bad)
    if k == "ipv4":
        bad["device"] = {"ipv4Address": obj["device"]["ipv4Address"]["publicAddress"]}
        return compact(bad)
    if k == "ports":
        for key in ("devicePorts", "applicationServerPorts"):
            if key in bad:
                spec = bad[key]
                bad[key] = spec["ports"] if "ports" in spec else [spec["ranges"][0]["from"], spec["ranges"][0]["to"]]
        return compact(bad)
    raise ValueError(k)


def build_camara(rng):
    pools = Pools(rng)
    sft, ev, pref = [], [], []
    for t in SFT_T:
        p, obj, meta = realise(t, pools)
        sft.append(({"prompt": p, "completion": compact(obj)}, meta))
    for t in EVAL_T:
        p, obj, meta = realise(t, pools)
        ev.append(({"prompt": p, "expect_json": obj, "schema": "schema.json"}, meta))
    counters = {}
    for i, t in enumerate(PREF_T):
        p, obj, meta = realise(t, pools)
        rej = make_rejected(t, obj, meta, i, counters)
        pref.append(({"prompt": p, "chosen": compact(obj), "rejected": rej}, meta))
    rng.shuffle(sft)
    rng.shuffle(ev)
    rng.shuffle(pref)
    return sft, ev, pref


# =====================================================================================
# Oil & Gas abbreviations
# =====================================================================================

def S(instruction, output, inp=None):
    row = {"instruction": instruction}
    if inp is not None:
        row["input"] = inp
    row["output"] = output
    return row


OG_SFT = [
    # DP
    S("What does DP stand for on a drillship?",
      "DP stands for Dynamic Positioning: a computer-controlled system that keeps the vessel on its target position and heading with its own thrusters and propellers, without anchors. Position references such as DGNSS and hydroacoustic beacons, plus gyros, wind sensors and motion reference units, feed the DP controller."),
    S("Expand the abbreviation in this line from a vessel's daily report.",
      "DP is Dynamic Positioning. DP2 is the equipment class with redundancy, so a single failure of an active component does not cause loss of position; after losing the HiPAP hydroacoustic reference the vessel kept station on its remaining DGNSS reference.",
      "DP2 vessel lost one position reference (HiPAP) at 03:40; station keeping maintained on DGNSS."),
    S("In offshore operations, what is a DP incident and why is it reported?",
      "A DP incident is a loss or degradation of Dynamic Positioning capability, such as a drive-off, drift-off or loss of position references. It is reported (for example to IMCA) because a DP vessel connected to a well through a riser must disconnect if it moves outside its watch circle."),
    S("In this tally line, what does DP mean?",
      "In a tripping line like this DP means drill pipe, the 5-1/2 in tubulars the BHA is run on. On a floating rig's marine report the same letters mean Dynamic Positioning, so read it from context: a pipe size in front of it points to drill pipe.",
      "RIH with 8-1/2in BHA on 5-1/2in DP to 3,250 m."),
    # BOP
    S("What is a BOP in well control?",
      "BOP is the Blowout Preventer: a stack of hydraulically operated valves on the wellhead that can close and seal the well if a kick occurs. A typical stack combines annular preventers with pipe rams and blind/shear rams; on floaters it sits on the seabed and is operated through redundant control pods."),
    S("What equipment is being tested here?",
      "The Blowout Preventer. The crew functioned the BOP from both control pods (blue and yellow) and pressure-tested the rams low (250 psi) and high (10,000 psi) to confirm they hold as a well barrier.",
      "Function-tested BOP on both pods; pressure-tested rams to 250/10,000 psi."),
    S("Which rams in a BOP stack can cut drill pipe?",
      "The blind shear rams of the Blowout Preventer shear the drill pipe and seal the open hole in one stroke; they are the last line of defence in an emergency disconnect. Pipe rams only close around the pipe body and annular preventers seal on almost any shape, but neither can cut."),
    # ROV
    S("What is an ROV used for on a deepwater drilling rig?",
      "An ROV is a Remotely Operated Vehicle: an unmanned, tethered submersible flown from the rig through an umbilical. Work-class ROVs watch the BOP and wellhead, operate valves and hot-stab panels, and carry out subsea inspection and intervention far deeper than divers can work."),
    S("Expand the abbreviations and explain the task.",
      "ROV is Remotely Operated Vehicle and BOP is Blowout Preventer. The vehicle inspects the wellhead visually, then hot-stabs into the BOP's ROV intervention panel and closes a ram with hydraulic fluid it supplies, as a backup to the normal control system.",
      "ROV on bottom, performing visual of wellhead; stab into BOP intervention panel for ram close test."),
    S("What's the difference between an observation-class and a work-class ROV?",
      "Both are Remotely Operated Vehicles. Observation-class ROVs are small and carry cameras and sonar for inspection; work-class ROVs add manipulator arms, hydraulic tooling and more power for intervention work such as valve operation, torque tools and BOP hot stabs."),
    # FPSO
    S("What does FPSO stand for?",
      "FPSO stands for Floating Production, Storage and Offloading unit: a ship-shaped floating facility that receives well fluids from subsea wells, processes them into stabilised crude, gas and water, stores the crude in its hull and offloads it to shuttle tankers."),
    S("What is the facility mentioned, and what does the turret do?",
      "The FPSO is a Floating Production, Storage and Offloading vessel. Its turret is the mooring point that lets the hull weathervane around it, and the swivel inside passes produced fluids from the fixed risers to the rotating vessel.",
      "First oil achieved; FPSO turret swivel leak-tested, offloading to shuttle tanker planned on day 14."),
    S("Why would an operator choose an FPSO instead of a fixed platform?",
      "An FPSO (Floating Production, Storage and Offloading unit) suits deep water or remote fields with no export pipeline: it stores crude in its hull and offloads to tankers, it can be moved to another field later, and it avoids building a fixed jacket in deep water."),
    # MWD
    S("What does MWD mean in directional drilling?",
      "MWD is Measurement While Drilling: sensors in the bottom hole assembly measure inclination, azimuth and toolface and send them to surface in real time, usually by mud-pulse telemetry. Directional drillers use those surveys to steer the well along its planned trajectory."),
    S("Explain this report line.",
      "MWD stands for Measurement While Drilling. The mud-pulse pulser that sends downhole survey data to surface failed, so the crew had no directional surveys and had to pull out of hole (POOH) to replace the tool.",
      "MWD pulser failed; no surveys at 2,840 m MD. POOH to change tool."),
    S("Besides surveys, what other data does an MWD tool send up?",
      "A Measurement While Drilling tool also reports drilling dynamics: downhole shock and vibration, stick-slip, annular pressure, temperature and on some tools downhole weight and torque on bit. It is also the telemetry link that carries LWD logging data to surface."),
    # LWD
    S("LWD: what is it and which measurements does it include?",
      "LWD is Logging While Drilling: formation evaluation sensors such as gamma ray, resistivity, density, neutron porosity and sonic are built into drill collars in the BHA, so the formation is logged while the hole is drilled rather than afterwards on wireline."),
    S("What does LWD refer to here and how is it used?",
      "LWD is Logging While Drilling. The real-time resistivity from the LWD tool indicates hydrocarbon-bearing sand, and the geosteering team uses it to move the well path up by 2 m to keep the bit inside the reservoir.",
      "LWD resistivity shows 35 ohm-m at 3,112 m; geosteer up 2 m to stay in sand."),
    S("Why use LWD instead of running wireline logs after the section is drilled?",
      "Logging While Drilling measures the formation minutes after it is cut, before mud filtrate invasion and washouts spoil the readings, and it allows geosteering in real time. It is also the practical option in high-angle and horizontal wells where wireline tools cannot descend by gravity."),
    # ESP
    S("What is an ESP in artificial lift?",
      "ESP means Electrical Submersible Pump: a multistage centrifugal pump driven by a downhole electric motor, powered through a cable from a surface variable speed drive. It lifts large fluid volumes from wells that cannot flow naturally or need a higher rate."),
    S("Explain the abbreviation and what happened.",
      "ESP is the Electrical Submersible Pump. It shut down on underload because it was moving too little liquid, most likely free gas at the intake (gas locking), so the engineer will restart it at a lower drive frequency of 45 Hz.",
      "ESP tripped on underload; intake pressure rising, suspect gas locking. Restart at 45 Hz."),
    S("Name the main components of an ESP string.",
      "From bottom to top an Electrical Submersible Pump string has the downhole motor, the seal section (protector), the intake or gas separator and the multistage centrifugal pump, with a power cable running up to a surface transformer and variable speed drive."),
    # GOR
    S("Define GOR.",
      "GOR is the Gas-Oil Ratio: the volume of gas produced per volume of oil, both at standard conditions, in scf/STB or Sm3/Sm3. It characterises the reservoir fluid and is tracked in well tests and production monitoring."),
    S("What does the trend suggest?",
      "GOR is the Gas-Oil Ratio. A threefold rise in producing Gas-Oil Ratio suggests reservoir pressure has fallen below the bubble point so free gas is flowing, or gas is coning down from a gas cap toward the perforations.",
      "Well A-12 GOR increased from 600 to 1,800 scf/STB in three months."),
    S("What is the difference between solution GOR and producing GOR?",
      "Solution Gas-Oil Ratio (Rs) is the gas dissolved in the oil at a given pressure, measured in PVT analysis. Producing GOR is what the well delivers at surface; above the bubble point the two are equal, below it free gas makes the producing GOR higher."),
    # WOB
    S("What is WOB in drilling?",
      "WOB is Weight on Bit: the downward force on the drill bit, supplied by the weight of the drill collars and heavy-weight pipe in the BHA. The driller controls it by slacking off hook load and reads it as the difference between off-bottom and on-bottom hook load."),
    S("What is the first parameter?",
      "WOB is Weight on Bit, here 25,000 to 30,000 lbf applied to the 12-1/4 in bit. Together with rotary speed (RPM) and flow rate it is one of the main drilling parameters the driller adjusts.",
      "Drilling 12-1/4in section: WOB 25-30 klbs, 140 RPM, flow 900 gpm."),
    S("Why not just run maximum WOB all the time?",
      "Beyond a point extra Weight on Bit stops increasing penetration (bit floundering), and it raises the risk of buckling the string, damaging the cutters and causing stick-slip or unwanted deviation. WOB is optimised together with RPM, often through drill-off tests."),
    # ROP
    S("In drilling, what is ROP?",
      "ROP is Rate of Penetration: how fast the bit deepens the hole, usually in ft/hr or m/hr. It is the main measure of drilling speed and depends on weight on bit, rotary speed, bit design, hydraulics and formation hardness."),
    S("Explain the abbreviation and the change.",
      "ROP is Rate of Penetration. It fell from 18 to 4 m/hr because the bit went from soft claystone into a harder limestone stringer, which is normal and on its own not a sign of bit failure.",
      "Average ROP 18 m/hr in claystone, dropped to 4 m/hr entering limestone stringer."),
    S("How can a drilling team improve ROP?",
      "Rate of Penetration can be raised by optimising weight on bit and RPM, choosing a bit suited to the formation, improving hole cleaning and bit hydraulics, reducing vibration, and using a lower mud weight where well control allows."),
    # TVD
    S("What is TVD?",
      "TVD is True Vertical Depth: the vertical distance from the depth reference (usually the rotary kelly bushing, RKB) straight down to a point in the well, whatever the well path. In a deviated well TVD is less than measured depth (MD)."),
    S("Which depth should be used for the hydrostatic pressure at the shoe, and why?",
      "Use the True Vertical Depth of 3,150 m, because hydrostatic pressure depends only on the vertical height of the fluid column (P = density x g x TVD). The 4,200 m measured depth is the length along the hole and matters for volumes and friction, not hydrostatics.",
      "Casing shoe at 4,200 m MD / 3,150 m TVD."),
    S("Why do directional drillers report both MD and TVD?",
      "Measured depth is the along-hole length used for pipe tallies, volumes and tool positions, while True Vertical Depth gives the vertical position needed for pressures, formation tops and mapping. In a horizontal section MD keeps increasing while TVD stays almost constant."),
    # NPT
    S("What does NPT mean in a drilling performance report?",
      "NPT is Non-Productive Time: rig time when planned operations stop or make no progress, for example equipment failure, waiting on weather, stuck pipe or fishing. It is logged in hours against cause codes and drives well cost, since the rig spread is paid either way."),
    S("Explain the abbreviations.",
      "NPT is Non-Productive Time, 62 hours in total. WOW means waiting on weather; the top drive repair is equipment downtime; and the waiting on cement was booked as non-productive, for example because it ran beyond the planned setting time.",
      "Total NPT this well: 62 hrs (WOW 30 hrs, top drive repair 20 hrs, waiting on cement 12 hrs)."),
    S("What's the difference between NPT and invisible lost time?",
      "Non-Productive Time is time when operations stop because of an event such as a failure or waiting. Invisible lost time (ILT) is inefficiency hidden inside productive work, like slow connections or tripping below the technical limit; both are targets for performance improvement."),
    S("What does NPT mean on this datasheet?",
      "On an equipment datasheet NPT means National Pipe Thread (taper), the tapered thread standard for small-bore fittings such as gauge ports. In drilling performance reports the same letters mean Non-Productive Time, so the context decides.",
      "Gauge port: 1/2in NPT female."),
    # P&A
    S("What does P&A mean for a well?",
      "P&A is Plug and Abandonment: permanently closing a well at the end of its life by placing cement plugs and other barriers across reservoirs and flow paths, then cutting and removing casing and wellhead below the mudline or ground level."),
    S("Explain this scope.",
      "P&A is Plug and Abandonment. The campaign will permanently abandon six subsea wells; section milling removes a length of casing so cement can be placed against the formation, giving a rock-to-rock barrier across the full cross-section of the well.",
      "Campaign scope: P&A of 6 subsea wells, including section milling for rock-to-rock barriers."),
    S("Which standards govern P&A in the North Sea?",
      "On the Norwegian shelf Plug and Abandonment follows NORSOK D-010 (well integrity in drilling and well operations); in the UK it follows the Offshore Energies UK well decommissioning guidelines. Both require permanent barriers designed to last with an eternal perspective."),
    # EOR
    S("Which methods count as EOR?",
      "EOR is Enhanced Oil Recovery: methods that recover oil beyond primary depletion and waterflooding by changing fluid or rock interactions, such as thermal methods (steam), gas injection (CO2 or hydrocarbon miscible flooding) and chemical flooding (polymer, surfactant)."),
    S("What is being piloted?",
      "An Enhanced Oil Recovery pilot using CO2 injection. The CO2 becomes miscible with the oil, swelling it and lowering its viscosity, and the operator expects an extra 8% of the original oil in place (OOIP).",
      "Pilot CO2 EOR project to start in Q3; expected incremental recovery 8% OOIP."),
    S("How does polymer flooding work as an EOR method?",
      "In polymer flooding, an Enhanced Oil Recovery method, water-soluble polymer raises the viscosity of the injected water, improving the mobility ratio so the water front sweeps the reservoir evenly instead of fingering through the oil."),
    # BHA
    S("Describe a typical BHA from the bit upwards.",
      "BHA is the Bottom Hole Assembly: the lower part of the drill string from the bit up to the drill pipe, including the bit, mud motor or rotary steerable system, stabilisers, MWD/LWD tools, drill collars, jars and heavy-weight drill pipe."),
    S("What is being changed and why?",
      "The Bottom Hole Assembly. The crew is pulling out to swap the bent-housing mud motor (1.5 degrees) for a rotary steerable system (RSS), which holds the tangent section with a smoother hole and no sliding.",
      "POOH to change BHA: swap 1.5 deg motor for RSS to hold tangent."),
    S("Why are drill collars part of the BHA?",
      "Drill collars are heavy, thick-walled tubulars placed low in the Bottom Hole Assembly to supply weight on bit while the lighter drill pipe above stays in tension, which keeps it from buckling."),
    # HPHT
    S("What qualifies a well as HPHT?",
      "HPHT means High Pressure High Temperature. A common definition (UK HSE) is an undisturbed bottomhole temperature above 300 degF (149 degC) together with either a pore pressure gradient above 0.8 psi/ft or a need for well control equipment rated above 10,000 psi."),
    S("Explain the abbreviations and what they imply for the well design.",
      "HPHT is High Pressure High Temperature and BOP is Blowout Preventer. A 180 degC bottomhole temperature calls for high-temperature elastomers, cement and MWD electronics, and the 15k means a BOP stack rated to 15,000 psi for the expected pressures.",
      "HPHT exploration well; 15k BOP, BHT 180 degC expected."),
    S("What extra risks do HPHT wells bring?",
      "High Pressure High Temperature wells have narrow windows between pore and fracture pressure, trapped annular pressure from thermal expansion, kicks that are harder to detect because gas expands strongly near surface, and seal and electronics failures at high temperature."),
    # ECD
    S("How is ECD defined, and how do you calculate it?",
      "ECD is Equivalent Circulating Density: the effective mud density the formation feels while circulating, equal to the static mud weight plus the annular friction pressure loss expressed as density. In field units ECD (ppg) = MW + annular pressure loss (psi) / (0.052 x TVD in ft)."),
    S("Calculate the ECD.",
      "Equivalent Circulating Density = 12.5 + 300 / (0.052 x 10,000) = 12.5 + 0.58, about 13.1 ppg. That is the density the open hole sees while pumping, so it must stay below the fracture gradient.",
      "MW 12.5 ppg, annular pressure loss 300 psi at 10,000 ft TVD."),
    S("Why does ECD matter in narrow-margin wells?",
      "When the window between pore pressure and fracture gradient is small, the extra Equivalent Circulating Density from pumping can fracture the formation and cause losses even though the static mud weight is safe. It is managed with flow rate, mud rheology and managed pressure drilling."),
    # PVT
    S("What is PVT analysis?",
      "PVT stands for Pressure-Volume-Temperature. A PVT analysis is a laboratory study of a reservoir fluid sample that measures its phase behaviour, such as bubble point, formation volume factor, solution gas-oil ratio and viscosity versus pressure."),
    S("What will the lab do?",
      "Run a Pressure-Volume-Temperature study. Constant composition expansion (CCE) finds the bubble point and compressibility, and differential liberation measures how solution gas, oil formation volume factor and density change as pressure falls below the bubble point.",
      "Bottomhole samples sent to lab for PVT; CCE and differential liberation requested."),
    S("Why do reservoir engineers need PVT data?",
      "Pressure-Volume-Temperature properties convert surface volumes to reservoir volumes (formation volume factors), feed material balance and reservoir simulation, and size separators and pipelines, so errors in PVT data carry into reserves and facility design."),
    # API
    S("What does API mean in API gravity?",
      "API is the American Petroleum Institute. API gravity is its measure of how heavy or light a petroleum liquid is compared with water: degrees API = 141.5 / SG at 60 degF - 131.5, so water is 10 degrees API and lighter oils have higher values."),
    S("Interpret the first value.",
      "38 degrees API is the API gravity on the American Petroleum Institute scale, a specific gravity of about 0.83, so this is a light crude; with 0.3 wt% sulfur it would be classed as light sweet.",
      "Crude assay: 38 API, 0.3 wt% sulfur."),
    S("What does 'API 6A' refer to on a wellhead nameplate?",
      "API 6A is the American Petroleum Institute specification for wellhead and Christmas tree equipment. It sets the pressure ratings, temperature classes, material classes and product specification levels (PSL) the equipment is built and tested to."),
    S("Classify a 22 API crude.",
      "On the American Petroleum Institute gravity scale 22 degrees API is a heavy crude: light is above 31.1, medium 22.3 to 31.1, heavy 10 to 22.3 and extra heavy below 10 degrees API."),
    # SURF
    S("What does SURF mean in subsea projects?",
      "SURF stands for Subsea Umbilicals, Risers and Flowlines: the subsea infrastructure that connects wells and manifolds to the host facility and carries production, injection fluids, power and control signals."),
    S("Explain the scope split.",
      "SURF is Subsea Umbilicals, Risers and Flowlines; the SURF contractor will engineer, procure, construct and install (EPCI) those items for the tie-back. SPS, the Subsea Production System (trees, manifolds, control modules), is a separate package.",
      "Contract award: SURF EPCI for the 3-well tie-back, SPS supplied separately."),
    S("What is the role of an umbilical in a SURF package?",
      "In a Subsea Umbilicals, Risers and Flowlines scope the umbilical carries hydraulic fluid, electrical power, fibre-optic or copper signals and chemicals such as MEG or scale inhibitor from the host to the subsea trees and manifolds."),
    # combinations
    S("Can one tool string do both MWD and LWD?",
      "Yes. Measurement While Drilling and Logging While Drilling tools are usually run together in the same BHA: the LWD sensors record formation data and the MWD tool sends a subset to surface by mud pulses, while the full-resolution logs are read from tool memory after the trip."),
    S("Expand every abbreviation in this note.",
      "HPHT is High Pressure High Temperature, ECD is Equivalent Circulating Density and PVT is Pressure-Volume-Temperature. In a hot, high-pressure well the margin between pore and fracture pressure is narrow, so ECD must be managed closely, and PVT samples characterise the reservoir fluid.",
      "HPHT well, ECD management critical, PVT samples taken at 4,650 m."),
]

def P(prompt, chosen, rejected):
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


OG_PREF = [
    P("The drillship's DP system lost a thruster. What is DP?",
      "DP is Dynamic Positioning: the computer-controlled system that holds the drillship on station with its thrusters and position references. Losing one thruster reduces its capability, and the DP class (for example DP3) decides whether the remaining redundancy lets operations continue.",
      "DP stands for Data Protection: the policies that keep the drillship's personal data secure under regulations such as GDPR. Losing a thruster would be logged as a data protection incident."),
    P("What does DP mean in 'DP operator' on an offshore construction vessel crew list?",
      "A DP operator (DPO) runs the Dynamic Positioning system from the bridge, monitoring thrusters, position references and the consequence analysis that keep the vessel on station during lifts and ROV work.",
      "A DP operator is responsible for Demographic Parity: checking that the vessel's hiring and crew-selection models treat demographic groups equally."),
    P("What is DP class 3?",
      "The highest Dynamic Positioning equipment class: no single failure may cause loss of position, including the loss of a whole compartment by fire or flood, which is achieved by physically separating thrusters, power and control systems.",
      "DP class 3 is the third level of Data Protection classification, used for confidential personnel records."),
    P("Explain 'BOP' in the sentence 'the BOP was closed after a 20 bbl pit gain'.",
      "BOP is the Blowout Preventer. A 20 bbl pit gain signals a kick, so the crew shut in the well by closing the BOP (annular or pipe rams) to stop further influx and then read the shut-in pressures.",
      "BOP means Balance of Payments. A 20 bbl pit gain is recorded as a surplus in the rig's Balance of Payments account."),
    P("What does BOP stand for in 'subsea BOP stack'?",
      "Blowout Preventer. The subsea BOP stack is the set of annular and ram preventers latched onto the wellhead on the seabed and controlled from the rig through redundant control pods.",
      "Balance of Payments: the subsea BOP stack is the record of all economic transactions between the offshore field and the rest of the world."),
    P("During the riser run, the ROV monitored the LMRP latching. Expand ROV.",
      "ROV is Remotely Operated Vehicle: the tethered underwater robot flown from the rig that watched the lower marine riser package (LMRP) latch onto the BOP and could intervene through its hot-stab panel.",
      "ROV is Return on Value, the metric management uses to check whether the riser run and LMRP latching delivered value for money."),
    P("What's an ROV in subsea inspection?",
      "A Remotely Operated Vehicle: an unmanned submersible controlled from the surface through an umbilical, carrying cameras, sonar and cleaning or cathodic-protection probes to inspect pipelines, risers and structures.",
      "ROV stands for Return on Value, a KPI that weighs the business benefit of the inspection programme against its cost."),
    P("Our field is produced through an FPSO. What is that?",
      "A Floating Production, Storage and Offloading unit: a floating vessel that processes the fluids from the subsea wells, stores stabilised crude in its tanks and offloads it to shuttle tankers.",
      "FPSO is a Fixed-Price Service Order: the contract under which the field's production is sold at a fixed price to a single buyer."),
    P("What does the 'O' in FPSO refer to?",
      "Offloading: the FPSO (Floating Production, Storage and Offloading unit) transfers its stored crude to shuttle tankers, typically in tandem through a hawser and a floating hose from the stern.",
      "Online: FPSO means Fixed Price Service Online, the portal where service orders for the field are placed."),
    P("What's MWD on a directional well?",
      "Measurement While Drilling: downhole sensors in the BHA that send inclination, azimuth and toolface to surface in real time, usually by mud pulses, so the directional driller can steer the well.",
      "MWD means Mean Wind Direction, the averaged wind bearing the rig reports for helicopter operations and directional planning."),
    P("Survey from MWD at 2,300 m shows 32 degrees inclination. What does MWD mean here?",
      "MWD is Measurement While Drilling: the directional sensors in the bottom hole assembly took the survey at 2,300 m and sent the 32 degree inclination to surface by mud-pulse telemetry.",
      "MWD is Mean Wind Direction: at 2,300 m altitude the average wind came from 32 degrees."),
    P("What is the LWD run in this drilling programme?",
      "The Logging While Drilling run: formation evaluation tools (gamma ray, resistivity, density-neutron) in the BHA log the formation as it is drilled, giving real-time data for geosteering and pore-pressure evaluation.",
      "The LWD run is the Lost Work Day count for the drilling programme, the number of days lost to injuries during the run."),
    P("Expand LWD in 'LWD gamma ray picked the top reservoir at 2,985 m MD'.",
      "Logging While Drilling: the gamma-ray sensor in the drill string saw the drop in gamma typical of clean reservoir sand at 2,985 m measured depth while the hole was being drilled.",
      "Long Wave Detection: the long-wave gamma detector on the rig recorded radiation at 2,985 m."),
    P("The production engineer wants to install an ESP in well P-3. What is it?",
      "An Electrical Submersible Pump: a downhole multistage centrifugal pump driven by an electric motor and powered by cable from surface, used as artificial lift to raise P-3's production rate.",
      "An Electronic Stability Program: a vehicle control system that brakes individual wheels to stop skidding, fitted to keep the well's service trucks stable."),
    P("ESP run life is only 9 months in this field. What is ESP?",
      "Electrical Submersible Pump. Run life is the time from installation to failure; short ESP life usually comes from sand, gas, scale, high temperature or motor and cable insulation failures, and each replacement needs a workover.",
      "ESP is extrasensory perception; a 9-month 'run life' means the field team's predictive intuition fades after nine months."),
    P("In 'ESP VSD set to 55 Hz', what's the ESP?",
      "The Electrical Submersible Pump; its variable speed drive (VSD) runs the downhole motor at 55 Hz, and changing the frequency changes pump speed and therefore rate and head.",
      "The Electronic Stability Program of the service vehicle, with its speed governor set to 55 Hz."),
    P("Test separator shows GOR of 950 scf/STB. Meaning?",
      "GOR is the Gas-Oil Ratio: 950 standard cubic feet of gas are produced per stock-tank barrel of oil. Comparing it with the solution GOR from PVT shows whether free gas is being produced.",
      "GOR stands for Gross Operating Revenue; 950 scf/STB is the revenue ratio booked for the test separator."),
    P("Why does the reservoir engineer track GOR monthly?",
      "Because Gas-Oil Ratio trends reveal reservoir behaviour: a rising GOR can mean pressure has dropped below the bubble point or gas is coning from a gas cap, which affects choke strategy and gas-handling capacity.",
      "Gross Operating Revenue has to be reported monthly to finance so the reservoir engineer can forecast income."),
    P("What is WOB and how is it measured?",
      "Weight on Bit is the axial load on the drill bit. At surface it is derived from hook load, the off-bottom string weight minus the on-bottom hook load; some MWD tools also measure it downhole.",
      "WOB is the Work Order Backlog, measured by counting the maintenance work orders not yet completed on the rig."),
    P("The driller increased WOB to 35 klbs. What does that mean?",
      "He slacked off more string weight so the bit carries 35,000 lbf of Weight on Bit, typically to raise the rate of penetration in a harder formation.",
      "He increased the Work Order Backlog to 35 thousand items, meaning more maintenance is pending."),
    P("ROP dropped sharply at 2,450 m. Explain ROP.",
      "ROP is Rate of Penetration, the speed at which the bit drills (m/hr or ft/hr). A sharp drop at 2,450 m usually means a harder formation, a worn or balled bit, or a change in drilling parameters.",
      "ROP means Rules of Procedure; a sharp drop at 2,450 m means fewer procedural rules were followed in that section."),
    P("What's a typical ROP target for a tophole section?",
      "Tophole sections in soft sediments are usually drilled at a high Rate of Penetration, often tens of metres per hour, limited more by hole cleaning and survey requirements than by the bit.",
      "ROP is the Reorder Point for inventory: a tophole section typically reorders when stock falls to 30 units."),
    P("Formation top at 2,800 m TVD. What is TVD?",
      "True Vertical Depth: the vertical distance from the reference datum (usually RKB) down to the formation top, independent of how deviated the well path is.",
      "TVD is Total Variation Denoising, a signal-processing filter; 2,800 m TVD means the log was smoothed over a 2,800 m window."),
    P("Why is mud hydrostatic pressure calculated with TVD?",
      "Hydrostatic pressure depends on the vertical height of the mud column, so it uses True Vertical Depth: P (psi) = 0.052 x MW (ppg) x TVD (ft). Measured depth would overstate it in a deviated well.",
      "Because TVD stands for Total Volume Displaced, and hydrostatic pressure equals the volume of mud the pipe has displaced."),
    P("This well had 15% NPT. Explain.",
      "NPT is Non-Productive Time: 15% of the rig's time was lost to unplanned events such as equipment failures, waiting on weather or stuck pipe. Lower NPT directly lowers well cost.",
      "NPT is the Network Time Protocol: 15% of the rig's computers failed to synchronise their clocks with the time server."),
    P("How is NPT coded in daily drilling reports?",
      "Each period of Non-Productive Time is logged with its duration, cause category (equipment, weather, downhole, waiting on third party) and responsible party, so it can be analysed and charged correctly.",
      "NPT entries record the network time offset of each rig computer, in milliseconds, as reported by the NTP daemon."),
    P("What are the main causes of NPT offshore?",
      "The largest contributors to Non-Productive Time offshore are usually equipment failures (top drive, BOP, mud pumps), waiting on weather, and downhole problems such as stuck pipe, losses and wellbore instability.",
      "Clock drift in the Network Time Protocol service, caused by poor satellite links and unsynchronised servers offshore."),
    P("The well is scheduled for P&A next year. What does that involve?",
      "Plug and Abandonment: the well will be permanently sealed with cement plugs and other barriers across the reservoir and shallower permeable zones, and the wellhead and casing will be cut below the seabed.",
      "P&A stands for Prepayments and Accruals: next year the well's costs will be prepaid and accrued in the accounts."),
    P("What is a rigless P&A?",
      "A Plug and Abandonment operation carried out without a drilling rig, using a light well intervention vessel, coiled tubing or wireline units for the downhole plugging; it lowers decommissioning cost where well conditions allow.",
      "A rigless P&A is a Profit and Allocation statement prepared without the rig's cost centre."),
    P("Is waterflooding considered EOR?",
      "Usually not: waterflooding is secondary recovery. Enhanced Oil Recovery (tertiary recovery) covers methods that change fluid interactions, such as miscible gas, thermal and chemical flooding.",
      "No, EOR means End of Record: waterflooding data is written before the end-of-record marker of the production file."),
    P("What does EOR mean in 'EOR screening criteria'?",
      "Enhanced Oil Recovery. Screening criteria compare reservoir properties (oil gravity, viscosity, depth, temperature, permeability) with the ranges where each EOR method, such as CO2 flooding or steam, has worked.",
      "End of Record: the screening criteria decide where each record of the log file ends."),
    P("The BHA includes a mud motor and MWD. What's a BHA?",
      "The Bottom Hole Assembly: the lowest section of the drill string, from the bit up to the drill pipe, here including a mud motor for steering and MWD for surveys.",
      "BHA stands for Bachelor of Health Administration, the degree held by the rig's medic."),
    P("Why would you run a packed BHA?",
      "A packed Bottom Hole Assembly has several full-gauge stabilisers near the bit that stiffen it, so it holds inclination and direction in tangent sections and resists deviation in hard formations.",
      "A packed BHA is a fully booked Bulk Handling Area on the supply vessel deck."),
    P("HPHT wells need special cement. What is HPHT?",
      "High Pressure High Temperature: wells with bottomhole temperatures above about 150 degC (300 degF) and pressures needing equipment rated above 10,000 psi. Cement must resist strength retrogression, so silica flour is added above about 110 degC.",
      "HPHT is High Performance Heat Treatment, a process that hardens the cement before it is pumped."),
    P("Which BOP rating would an HPHT well need?",
      "High Pressure High Temperature wells generally need a 15,000 psi or 20,000 psi BOP stack rated above the expected wellhead pressure, with elastomers qualified for the well temperature.",
      "An HPHT (Hydraulic Power Hose Test) well only needs a BOP rated for the hose test pressure of 3,000 psi."),
    P("ECD at the shoe is 14.2 ppg. Explain.",
      "Equivalent Circulating Density: while circulating, the mud column plus annular friction exerts the pressure of a 14.2 ppg fluid at the shoe, and it must stay below the shoe's fracture (leak-off) gradient.",
      "ECD is the Estimated Completion Date; 14.2 means the shoe will be completed on the 14th, 2 days late."),
    P("How does pump rate affect ECD?",
      "A higher flow rate increases annular friction pressure, so Equivalent Circulating Density rises; lowering the rate or thinning the mud rheology reduces ECD and the risk of losses.",
      "Pump rate changes the Electron Capture Detector signal in the mud-logging gas chromatograph."),
    P("Bubble point from PVT is 2,950 psia. What is PVT?",
      "Pressure-Volume-Temperature: the laboratory analysis of the reservoir fluid, which found that gas starts coming out of solution at 2,950 psia at reservoir temperature.",
      "PVT means Product Verification Test; 2,950 psia is the pressure the product passed in its verification test."),
    P("Why take PVT samples early in field life?",
      "Because Pressure-Volume-Temperature samples must represent the original reservoir fluid; once pressure falls below the bubble point, gas and oil separate in the reservoir and samples no longer capture the initial composition.",
      "PVT stands for photovoltaic-thermal panels, which should be installed early to power the field."),
    P("The crude is 42 degrees API. What does API mean?",
      "American Petroleum Institute. 42 degrees API is a light crude on the API gravity scale (degrees API = 141.5/SG - 131.5), where a higher value means a lower density.",
      "API means Application Programming Interface; 42 is the version of the interface used to read the crude data."),
    P("What is API RP 53?",
      "An American Petroleum Institute recommended practice for blowout prevention equipment systems for drilling wells, covering BOP installation, testing and maintenance; it is now published as API Standard 53.",
      "API RP 53 is endpoint number 53 of the rig data REST Application Programming Interface."),
    P("What is the API gravity of water?",
      "10 degrees API. On the American Petroleum Institute gravity scale water (SG 1.0) is 10, so oils above 10 degrees API float on water.",
      "Water has no API gravity, because API is an Application Programming Interface concept and does not apply to fluids."),
    P("Who does the SURF scope on a subsea tie-back?",
      "SURF (Subsea Umbilicals, Risers and Flowlines) is usually awarded to an installation contractor with pipelay and construction vessels, separately from the SPS supplier who delivers trees and manifolds.",
      "SURF is Speeded-Up Robust Features, a computer-vision algorithm the tie-back team uses to match seabed images."),
    P("What does SURF cover?",
      "Subsea Umbilicals, Risers and Flowlines: the static and dynamic pipes and control umbilicals that connect subsea wells to the host, plus associated structures such as PLETs and jumpers.",
      "SURF stands for Speeded-Up Robust Features, a feature detector that covers keypoint detection and description in images."),
    P("We tripped in with 5-inch DP to 3,200 m. What is DP here?",
      "Here DP is Drill Pipe: the 5-inch steel pipe joints made up into the drill string between the BHA and the surface. In a drilling report 'tripped in with 5-inch DP' means running drill pipe into the hole; on a vessel's bridge the same letters usually mean Dynamic Positioning.",
      "DP is Demographic Parity: the share of positive predictions is equal across groups, so 5-inch DP means the model was balanced to within five percent."),
    P("What was the result of the LOT below the 13 3/8-inch shoe?",
      "LOT is the Leak-Off Test: after drilling a few metres below the casing shoe, the well is shut in and pumped slowly until the pressure curve departs from a straight line. That leak-off pressure, converted to an equivalent mud weight, sets the maximum mud weight and kick tolerance for the next section.",
      "LOT means a lot (batch) of cement; the result is the batch number recorded on the cementing ticket."),
    P("How does a FIT differ from a LOT before drilling ahead?",
      "A Leak-Off Test (LOT) pumps until the formation starts to take fluid and records that leak-off pressure; a Formation Integrity Test (FIT) only pressures up to a planned value without breaking the formation down, proving the shoe can hold the mud weight needed for the next section.",
      "LOT is Lots Of Time and FIT is Fitness, both terms from the rig crew's training records."),
    P("The well reached TD at 4,120 m MD. Expand TD and MD.",
      "TD is Total Depth, the final depth of the well or section, and MD is Measured Depth, the length along the wellbore from the rig floor reference. In a deviated well MD is longer than the True Vertical Depth (TVD).",
      "TD is a touchdown and MD is a Medical Doctor: the medic confirmed the helicopter touchdown at 4,120 m."),
    P("Morning report: POOH to change the bit, then RIH. What do POOH and RIH mean?",
      "POOH is Pull Out Of Hole and RIH is Run In Hole: the crew trips the drill string out to surface, changes the worn bit, and trips back to bottom to continue drilling.",
      "POOH and RIH are software release codes: POOH is the Product Owner's Open Hours and RIH the Release In Hand."),
    P("Calculated BHP is 5,600 psi. What is BHP?",
      "BHP is Bottomhole Pressure: the pressure at the bottom of the well, from the hydrostatic column of fluid plus any surface or friction pressure. Keeping BHP above pore pressure prevents kicks and below fracture pressure prevents losses.",
      "BHP is brake horsepower, the engine output of the rig's diesel generators, here 5,600 horsepower."),
    P("The platform's ESD was triggered by a gas detector. What is ESD?",
      "ESD is Emergency Shutdown: the safety system that closes shutdown valves, isolates the process and stops equipment when a gas detector, fire alarm or manual push-button demands it.",
      "ESD is electrostatic discharge: the gas detector released a small static spark."),
    P("After shutting in the kick we read SIDPP 450 psi and SICP 620 psi. Explain.",
      "SIDPP is Shut-In Drill Pipe Pressure and SICP is Shut-In Casing Pressure. SIDPP tells the underbalance at bottom, so it gives the kill mud weight; SICP is higher because the lighter influx sits in the annulus.",
      "SIDPP and SICP are the crew's Standard Incident Data Processing and Safety Incident Compliance Procedures."),
    P("Why would an operator choose MPD for this well?",
      "MPD is Managed Pressure Drilling: a closed, pressurised mud system with a rotating control device and choke that adjusts surface back-pressure to hold bottomhole pressure in a narrow window between pore and fracture pressure, as in depleted or HPHT wells.",
      "MPD is the Metropolitan Police Department, chosen because the well is near a city."),
    P("The intervention will be done with CT. What is CT?",
      "CT is Coiled Tubing: a continuous length of steel tubing spooled on a reel and run into a live well through an injector head and stripper, for cleanouts, nitrogen lifts, acid jobs or logging without a rig.",
      "CT is Computed Tomography: the well will be scanned in a hospital scanner."),
    P("The exploration well will run a DST. What is it for?",
      "A DST is a Drill Stem Test: the drill string carries packers and valves that isolate the zone and let it flow to surface, measuring flow rates and pressure build-up to judge productivity and take reservoir fluid samples.",
      "DST is Daylight Saving Time: the well test is postponed by one hour."),
    P("Why drill this section with OBM?",
      "OBM is Oil-Based Mud, whose continuous phase is oil. It inhibits reactive shales, lubricates the string and stands high temperatures, at the cost of price and stricter handling of cuttings.",
      "OBM is the Original Bill of Materials: the section is drilled with the parts listed in it."),
    P("Function test of the SCSSV failed. What is an SCSSV?",
      "An SCSSV is a Surface-Controlled Subsurface Safety Valve: a fail-safe flapper valve in the tubing below the wellhead, held open by hydraulic pressure from surface and closing if that pressure is lost, so the well is shut in even if the tree is damaged.",
      "SCSSV is a Secure Cloud Storage Service Vault that keeps the well data; the test failed because of a password."),
    P("What is the PI of well P-7 after the acid job?",
      "PI is the Productivity Index: the production rate per unit of drawdown (for example bbl/d per psi). A higher PI after the acid job shows the stimulation removed near-wellbore damage.",
      "PI is the Principal Investigator of the research project on well P-7."),
    P("The TLP's tendons were inspected. What kind of platform is a TLP?",
      "A TLP is a Tension Leg Platform: a floating platform held down by vertical tendons anchored to the seabed, kept in tension by the hull's excess buoyancy, so it barely heaves and can carry dry trees.",
      "TLP is a Transport Layer Protocol; the tendons are its network cables."),
    P("Expand LMRP in 'the LMRP was disconnected during the storm'.",
      "LMRP is the Lower Marine Riser Package: the top part of the subsea BOP stack, holding the annular preventers and control pods, which disconnects from the lower stack so the rig can move off while the well stays shut in.",
      "LMRP is a Least-Mean-Regret Policy from reinforcement learning; it was disconnected from the training run."),
    P("What is a MODU?",
      "A MODU is a Mobile Offshore Drilling Unit: a rig that moves between locations, such as a jack-up, semi-submersible or drillship, as opposed to a fixed platform rig.",
      "A MODU is a Modular Data Unit: a rack of servers that can be moved between data centres."),
    P("Our gas is exported as LNG. What does that mean?",
      "LNG is Liquefied Natural Gas: natural gas cooled to about -162 degC so it condenses to a liquid at near-atmospheric pressure, taking about 1/600 of the volume, and is shipped in insulated tankers.",
      "LNG is Long Network Gateway: the gas data is exported over the field's long-distance network."),
    P("The subsea tree is an XT. What is it?",
      "XT is the Christmas tree: the assembly of valves, spools and fittings on top of the wellhead that controls flow from the well, with master and wing valves and access for interventions. Subsea trees are vertical or horizontal.",
      "XT is an extended terminal, a model of computer screen fitted to the subsea control room."),
    P("What does WHP tell the production operator?",
      "WHP is Wellhead Pressure, the pressure at the top of the well. Trending WHP with the choke setting and rate shows changes in reservoir pressure, water cut or lift performance, and a shut-in WHP helps estimate reservoir pressure.",
      "WHP is the Weekly Holiday Plan, telling the operator which days off are scheduled."),
]

OG_EVAL = [
    ("Our semi-submersible switched to DP mode after recovering its anchors. What does DP mean here?", ["Dynamic Positioning"], ["Demographic Parity", "Data Protection"]),
    ("Which piece of equipment is meant by BOP on a drilling rig?", ["Blowout Preventer"], ["Balance of Payments"]),
    ("Expand ROV in 'ROV dive 14: inspected the subsea tree'.", ["Remotely Operated Vehicle"], ["Return on Value"]),
    ("Spell out FPSO.", ["Floating Production", "Offloading"], ["Fixed-Price", "Fixed Price"]),
    ("What does the MWD tool measure while drilling the build section?", ["Measurement While Drilling"], ["Mean Wind Direction"]),
    ("What is an LWD density-neutron tool?", ["Logging While Drilling"], ["Lost Work Day"]),
    ("The well needs an ESP to keep producing. What is that?", ["Submersible Pump"], ["Electronic Stability", "extrasensory"]),
    ("How is GOR expressed in field units?", ["Gas-Oil Ratio"], ["Gross Operating Revenue"]),
    ("Give the meaning of WOB on a drilling parameter sheet.", ["Weight on Bit"], ["Work Order Backlog"]),
    ("What does ROP measure during drilling?", ["Rate of Penetration"], ["Rules of Procedure", "Reorder Point"]),
    ("A deviated well reaches 3,900 m MD. Is its TVD larger or smaller, and what is TVD?", ["True Vertical Depth"], ["Total Variation"]),
    ("The rig logged 40 hours of NPT last month. What is NPT?", ["Non-Productive Time"], ["Network Time Protocol"]),
    ("What happens during a P&A campaign?", ["Plug and Abandonment"], ["Profit and Loss", "Prepayments"]),
    ("Give an example of an EOR technique.", ["Enhanced Oil Recovery"], ["End of Record"]),
    ("List typical components of a BHA.", ["Bottom Hole Assembly"], ["Bachelor"]),
    ("What temperature threshold defines an HPHT well?", ["High Pressure", "High Temperature"], ["Heat Treatment"]),
    ("Why is ECD higher than static mud weight?", ["Equivalent Circulating Density"], ["Estimated Completion Date"]),
    ("What does a PVT report tell a reservoir engineer?", ["Pressure-Volume-Temperature"], ["Product Verification"]),
    ("Which organisation is behind API gravity?", ["American Petroleum Institute"], ["Application Programming Interface"]),
    ("What is included in the SURF package of a subsea development?", ["Umbilicals", "Risers", "Flowlines"], ["Speeded-Up"]),
    ("What's the difference between MWD and LWD?", ["Measurement While Drilling", "Logging While Drilling"], ["Mean Wind Direction", "Lost Work Day"]),
    ("How do WOB and ROP relate?", ["Weight on Bit", "Rate of Penetration"], ["Work Order Backlog", "Rules of Procedure"]),
]


# =====================================================================================
# Education dialogues
# =====================================================================================

EDU_SYSTEM = ("You are a patient physics and maths teacher. Guide the student step by step, ask short "
              "questions to check understanding, correct mistakes kindly, and keep every explanation "
              "clear and accurate.")


def D(*turns):
    msgs = [{"role": "system", "content": EDU_SYSTEM}]
    for i, t in enumerate(turns):
        msgs.append({"role": "user" if i % 2 == 0 else "assistant", "content": t})
    return {"messages": msgs}


EDU = [
    D("Why doesn't a heavy ball fall faster than a light one? It feels like it should.",
      "It does feel that way, so let's test the idea with Newton's second law, F = m a. Gravity pulls on an object with a force equal to its weight, m g. If we put that force into F = m a, what do you get for the acceleration a?",
      "m g = m a, so a = g?",
      "Exactly. The mass cancels: a heavier ball feels a bigger pull, but it is also harder to accelerate by exactly the same factor, so every object accelerates at g, about 9.8 m/s^2, if air resistance is negligible. Can you think of a case where air resistance is not negligible?",
      "A feather?",
      "Yes. A feather falls slowly because air resistance is large compared with its tiny weight. On the Moon, with no air, an astronaut dropped a hammer and a feather and they landed together. So the rule is: same acceleration in a vacuum, and differences only come from air resistance."),
    D("How do I divide 3/4 by 1/2? I always forget the rule.",
      "Let's make the rule make sense instead of memorising it. Dividing by a number asks 'how many of these fit into that?' How many halves fit into 1?",
      "Two.",
      "Right, so dividing by 1/2 is the same as multiplying by 2, the reciprocal of 1/2. That is the whole rule: flip the second fraction and multiply. Try it: 3/4 x 2/1 = ?",
      "6/4, which is 3/2.",
      "Perfect, 3/2, or one and a half. Quick check that it is sensible: 3/4 is one and a half times as big as 1/2, so one and a half halves fit into it. Whenever you divide fractions, flip the divisor and multiply, then simplify."),
    D("What does a derivative actually mean? My teacher just says it's the slope.",
      "'Slope' is a good start, but it is the slope of the curve at a single point. Take y = x^2. Between x = 3 and x = 4, y goes from 9 to 16. What is the average slope, change in y over change in x?",
      "7.",
      "Good. Now shrink the gap: from x = 3 to x = 3.1, y goes from 9 to 9.61. What is the slope now?",
      "0.61 divided by 0.1, so 6.1.",
      "Yes. As the gap shrinks the slope approaches 6, and that limit is the derivative at x = 3. The general formula for y = x^2 is dy/dx = 2x, and 2 x 3 = 6 agrees. So a derivative is the instantaneous rate of change: how fast y is changing at that exact x."),
    D("A 12 V battery is connected to a 4 ohm resistor. What current flows?",
      "Let's use Ohm's law, V = I R. Which quantity are we looking for, and how would you rearrange the formula to get it?",
      "Current, so I = V / R = 12 / 4 = 3 A.",
      "Spot on, 3 amperes. Now a follow-up: the power turned into heat in the resistor is P = V I. What is it?",
      "12 times 3, 36 W.",
      "Correct, 36 watts. You can check it another way with P = I^2 R = 3^2 x 4 = 36 W. Getting the same answer two ways is a great habit for catching mistakes.",
      "What if I use two 4 ohm resistors in series instead?",
      "In series the resistances add, so the total is 8 ohms and the current is I = 12 / 8 = 1.5 A, half of before. The power drops to P = V I = 12 x 1.5 = 18 W in total, 9 W in each resistor. Next time, try the parallel case yourself: two 4 ohm resistors in parallel make 2 ohms."),
    D("A 5 m ladder leans against a wall with its foot 3 m from the wall. How high up the wall does it reach?",
      "Picture the triangle: the wall, the ground and the ladder. Which side is the hypotenuse, the longest side opposite the right angle?",
      "The ladder, 5 m.",
      "Yes. Pythagoras says a^2 + b^2 = c^2 with c the hypotenuse. So 3^2 + h^2 = 5^2. Can you solve for h?",
      "9 + h^2 = 25, h^2 = 16, h = 4.",
      "Exactly, the ladder reaches 4 m up the wall. This 3-4-5 triangle appears so often that it is worth remembering. Is a height of 4 m reasonable for a 5 m ladder? It should always be less than the ladder's length, and it is."),
    D("A ball rolls off a 20 m high cliff at 5 m/s horizontally. How far from the base does it land?",
      "The trick is to treat horizontal and vertical motion separately. Vertically the ball starts with zero speed and falls 20 m under gravity. Which equation gives the time to fall?",
      "h = 1/2 g t^2?",
      "Right. With g = 9.8 m/s^2: 20 = 4.9 t^2. What is t?",
      "t^2 = 4.08, so t is about 2.02 s.",
      "Good. Horizontally there is no force (ignoring air resistance), so the ball keeps moving at 5 m/s the whole time. Distance = 5 x 2.02, about 10.1 m from the base. Notice the horizontal speed did not change the fall time at all: a ball dropped straight down from the cliff would land at the same moment."),
    D("I need to solve x^2 - 5x + 6 = 0. I got x = -2 and x = -3.",
      "Nice try, let's check it. Put x = -2 into the left side: (-2)^2 - 5(-2) + 6. What do you get?",
      "4 + 10 + 6 = 20. That's not zero.",
      "So something went wrong, and it is usually the signs. We need two numbers that multiply to +6 and add to -5. Which pair works?",
      "-2 and -3.",
      "Yes, so the factorisation is (x - 2)(x - 3) = 0. Each bracket can be zero, which gives x = 2 or x = 3. The numbers in the brackets come with the opposite sign to the solutions. Check x = 3: 9 - 15 + 6 = 0."),
    D("What's the probability of rolling a total of 7 with two dice?",
      "Let's count. Each die has 6 faces, so how many equally likely outcomes are there for the pair?",
      "36.",
      "Right. Now list the pairs that add to 7, for example (1, 6). How many can you find?",
      "(1,6), (2,5), (3,4), (4,3), (5,2), (6,1), so 6.",
      "Exactly, 6 favourable outcomes out of 36, so P = 6/36 = 1/6. Note that (3,4) and (4,3) count separately because the dice are different. 7 is the most likely total; by the same counting, a total of 2 has probability only 1/36."),
    D("Why does a block of wood float but a steel bolt sinks?",
      "It comes down to density, mass per unit volume. Water has a density of about 1000 kg/m^3. Do you know roughly how dense pine wood and steel are?",
      "Wood is lighter, maybe 600? Steel much more.",
      "Good estimates: pine is about 600 kg/m^3 and steel about 7800 kg/m^3. An object floats if its average density is less than the liquid's. Here is a challenge: what fraction of the wood block will be under water?",
      "600 over 1000, so 60%?",
      "Exactly. A floating object sinks until the water it displaces weighs as much as the object (Archimedes' principle), so the submerged fraction equals the density ratio, 0.6. That also explains steel ships: their hollow shape makes the average density of hull plus air lower than water."),
    D("I don't get logarithms. What is log base 2 of 8?",
      "A logarithm answers one question: 'what power do I need?' log base 2 of 8 asks: 2 to what power gives 8?",
      "2^3 = 8, so 3.",
      "That's it. Try one in base 10: what is log10(1000)?",
      "3 again, because 10^3 = 1000.",
      "Correct. One useful rule follows from this: log(a x b) = log a + log b, because multiplying powers adds exponents. For example log10(1000 x 100) = 3 + 2 = 5, and indeed 100000 = 10^5. Whenever you are unsure, rewrite the log as a power question."),
    D("A stone is dropped from 5 m. How fast is it going when it hits the ground?",
      "Let's use energy. At the top the stone has potential energy m g h and no kinetic energy. At the bottom, what has that energy turned into?",
      "Kinetic energy, 1/2 m v^2.",
      "Yes. Set them equal: m g h = 1/2 m v^2. What happens to m, and what is v?",
      "m cancels, so v = sqrt(2 g h) = sqrt(2 x 9.8 x 5) = sqrt(98), about 9.9 m/s.",
      "Excellent, about 9.9 m/s, ignoring air resistance. The mass cancelled just like in free fall, so a pebble and a brick dropped from 5 m land at the same speed. Energy methods are handy because you don't need to know the time."),
    D("A 2 kg trolley moving at 3 m/s hits a 1 kg trolley at rest and they stick together. How fast do they move afterwards?",
      "This is a job for conservation of momentum, p = m v. What is the total momentum before the collision?",
      "2 x 3 = 6, plus 0 for the other one, so 6 kg m/s.",
      "Right. After the collision the trolleys move together as one 3 kg object, and the momentum is still 6 kg m/s. What is their speed?",
      "6 / 3 = 2 m/s.",
      "Exactly, 2 m/s. Kinetic energy is not conserved here: before it was 1/2 x 2 x 3^2 = 9 J, after it is 1/2 x 3 x 2^2 = 6 J. The missing 3 J went into heat and sound, which is typical of collisions where objects stick."),
    D("What's the wavelength of a 680 Hz sound in air?",
      "We need the wave equation v = f x wavelength. The speed of sound in air is about 340 m/s. How would you rearrange it to find the wavelength?",
      "wavelength = v / f = 340 / 680 = 0.5 m.",
      "Correct, half a metre. Now predict: if the frequency doubles to 1360 Hz, what happens to the wavelength?",
      "It halves, 0.25 m.",
      "Yes. The speed is set by the medium (air), not by the source, so a higher frequency means a shorter wavelength. That's why high notes have short wavelengths and bass notes can be several metres long."),
    D("If a price goes up 20% and then down 20%, isn't it back where it started?",
      "Good question; many people think so. Let's test it with a price of 100. What is it after a 20% increase?",
      "120.",
      "Now take 20% off 120. What is 20% of 120, and what is left?",
      "24, so 96. Oh, it's lower!",
      "Exactly. The decrease is 20% of a bigger number, so it removes more than the increase added. In multipliers: 1.2 x 0.8 = 0.96, a 4% overall drop. Percentage changes multiply; they don't simply add.",
      "So if something drops by 20%, what increase brings it back?",
      "Let's use the same trick. 100 drops to 80, and we need to add 20 to get back. As a percentage of the new price that is 20 / 80 = 25%. So a 20% fall needs a 25% rise to recover, because the rise is measured from a smaller base. In multipliers: 0.8 x 1.25 = 1."),
    D("Solve 3x + 5 = 20 for me?",
      "Let's do it together so you can do the next one alone. We want x by itself. What is being done to x, in order?",
      "It's multiplied by 3, then 5 is added.",
      "Right, so we undo those steps in reverse order. First undo the +5: what do you get if you subtract 5 from both sides?",
      "3x = 15, and then divide by 3, x = 5.",
      "Perfect, x = 5. Always check by substituting: 3 x 5 + 5 = 20. The idea is to keep the equation balanced by doing the same thing to both sides and undoing operations in reverse order."),
]


# =====================================================================================
# BGP
# =====================================================================================

def B(instruction, output, inp=""):
    return {"instruction": instruction, "input": inp, "output": output}


BGP = [
    B("Explain the BGP LOCAL_PREF attribute.",
      "LOCAL_PREF is a well-known discretionary attribute exchanged only between iBGP peers inside one AS. It tells every router in the AS which exit to prefer for a prefix: the highest LOCAL_PREF wins (default 100). It is typically set with an inbound route-map on the eBGP session, for example 200 for routes learned from the primary upstream, so the whole AS sends traffic out that way."),
    B("What does the AS_PATH attribute do?",
      "AS_PATH lists the autonomous systems a route has passed through; each eBGP speaker prepends its own ASN when advertising. It serves two purposes: loop prevention (a router rejects a route whose AS_PATH already contains its own ASN) and path selection (a shorter AS_PATH is preferred after weight, LOCAL_PREF and local origination). AS_SET segments from aggregation count as one hop."),
    B("Explain MED and when it is compared.",
      "MED (MULTI_EXIT_DISC) is an optional non-transitive attribute a neighbouring AS uses to tell you which of its several entry links it prefers; lower is better. By default it is only compared between routes received from the same neighbouring AS. 'bgp always-compare-med' compares it across ASes, and 'bgp deterministic-med' groups paths by AS before comparing so the result does not depend on arrival order."),
    B("Why are my iBGP routes not installed even though they appear in the BGP table?",
      "The next hop probably isn't reachable. By default an eBGP-learned route keeps the external peer's address as NEXT_HOP when passed to iBGP peers. If that address is not in your IGP, the route is marked inaccessible and is never best. Either advertise the external link into the IGP (e.g. as a passive interface) or set 'neighbor X next-hop-self' on the border router's iBGP sessions.",
      "R2# show ip bgp 203.0.113.0/24\nBGP routing table entry for 203.0.113.0/24, version 0\nPaths: (1 available, no best path)\n  64511\n    198.51.100.1 (inaccessible) from 192.0.2.1 (192.0.2.1)\n      Origin IGP, metric 0, localpref 100, valid, internal"),
    B("List the BGP best-path selection steps on Cisco IOS in order.",
      "1. Highest weight (Cisco-specific, local to the router). 2. Highest LOCAL_PREF. 3. Locally originated (network, aggregate or redistribute). 4. Shortest AS_PATH. 5. Lowest ORIGIN (IGP < EGP < incomplete). 6. Lowest MED (same neighbour AS by default). 7. eBGP over iBGP. 8. Lowest IGP metric to the NEXT_HOP. 9. Oldest eBGP path. 10. Lowest router ID. 11. Shortest cluster list. 12. Lowest neighbour address. Before all of this, the next hop must be reachable and the path valid."),
    B("What are BGP communities and which well-known ones should I know?",
      "Communities are 32-bit tags (RFC 1997), written ASN:value, attached to routes so policy can act on groups of prefixes, e.g. 64500:120 meaning 'set LOCAL_PREF 120' at a provider. Well-known ones: NO_EXPORT (do not advertise outside the AS or confederation), NO_ADVERTISE (do not advertise to any peer) and NO_EXPORT_SUBCONFED. Large communities (RFC 8092, ASN:value1:value2) carry 32-bit ASNs. Remember to enable sending them, e.g. 'neighbor X send-community' on Cisco IOS."),
    B("What is the ORIGIN attribute?",
      "ORIGIN is a well-known mandatory attribute that says how a prefix entered BGP: IGP ('i', from a network statement or aggregate), EGP ('e', from the historic EGP protocol) or incomplete ('?', typically redistribution). In best-path selection, lower is preferred: IGP < EGP < incomplete, evaluated after AS_PATH length."),
    B("This BGP session won't come up. What is wrong?",
      "The router sent a NOTIFICATION with code 2 (OPEN message error), subcode 2 (bad peer AS). The two data bytes are the AS number the peer put in its OPEN: 0xFBF1 = 64497. So 203.0.113.2 is in AS 64497 but the local configuration expects a different remote AS. Fix 'neighbor 203.0.113.2 remote-as 64497' (or ask the peer to correct their local-as), then the session will establish.",
      "%BGP-3-NOTIFICATION: sent to neighbor 203.0.113.2 passive 2/2 (peer in wrong AS) 2 bytes FBF1\n%BGP-4-MSGDUMP: unsupported or mal-formatted message received from 203.0.113.2:\nFFFF FFFF FFFF FFFF FFFF FFFF FFFF FFFF 0039 0104 FBF1 00B4 C633 6401 1C02 0601"),
    B("Interpret this log and suggest what to check.",
      "The peer sent us code 4 (hold timer expired): it did not receive any KEEPALIVE or UPDATE from us within its hold time (180 s here), so it tore the session down. Our keepalives are being lost or delayed on the way. Check for interface errors or congestion, CPU spikes on our router, control-plane policing or ACLs dropping TCP 179, and MTU problems: if small keepalives pass but large UPDATEs get stuck, the session typically flaps right after it comes up.",
      "Jun 12 09:41:07: %BGP-3-NOTIFICATION: received from neighbor 198.51.100.1 4/0 (hold time expired) 0 bytes\nJun 12 09:41:07: %BGP-5-ADJCHANGE: neighbor 198.51.100.1 Down BGP Notification received\nR1# show ip bgp neighbors 198.51.100.1 | include hold time\n  Last read 00:00:41, last write 00:00:12, hold time is 180, keepalive interval is 60 seconds"),
    B("The neighbor stays in Active. What does that mean and how do I troubleshoot it?",
      "Active means the router is trying to open the TCP connection to the peer and failing; BGP never gets to exchange OPEN messages. Check in this order: IP reachability to 192.0.2.14 (ping from the right source address), that the peer has a matching neighbor statement pointing back at our address, 'update-source' if peering between loopbacks, ACLs or firewalls blocking TCP port 179, and for eBGP between non-adjacent addresses the need for 'ebgp-multihop'.",
      "R1# show ip bgp summary\nNeighbor        V    AS MsgRcvd MsgSent   TblVer  InQ OutQ Up/Down  State/PfxRcd\n192.0.2.14      4 64499       0       0        1    0    0 never    Active"),
    B("What causes these messages?",
      "TCP MD5 authentication is failing on the BGP session. 'Invalid MD5 digest' means both sides use MD5 but the passwords differ; 'No MD5 digest' would mean the peer sends no signature at all because it has no password configured. Set the same 'neighbor 192.0.2.9 password' on both routers (watch for trailing spaces and case). The session cannot come up until the keys match, and it shows as Idle or Active meanwhile.",
      "%TCP-6-BADAUTH: Invalid MD5 digest from 192.0.2.9(179) to 192.0.2.10(34817) tableid - 0\n%TCP-6-BADAUTH: Invalid MD5 digest from 192.0.2.9(179) to 192.0.2.10(41255) tableid - 0"),
    B("Why did this session drop and how do I bring it back?",
      "The peer advertised 1001 prefixes, above the 'maximum-prefix 1000' limit configured for it, so the router tore the session down and holds it in Idle (PfxCt). It stays down until cleared manually ('clear ip bgp 198.51.100.9') unless a restart interval is configured ('neighbor 198.51.100.9 maximum-prefix 1000 80 restart 15'). First find out whether the peer legitimately grew (then raise the limit) or leaked routes (then ask them to fix their export policy).",
      "%BGP-4-MAXPFX: No. of prefix received from 198.51.100.9 (afi 0) reaches 800, max 1000\n%BGP-3-MAXPFXEXCEED: No. of prefix received from 198.51.100.9 (afi 0): 1001 exceed limit 1000\n%BGP-5-ADJCHANGE: neighbor 198.51.100.9 Down BGP Notification sent\nR1# show ip bgp summary | include 198.51.100.9\n198.51.100.9    4 64510    1204     311        0    0    0 00:00:12 Idle (PfxCt)"),
    B("I want eBGP between loopbacks over two parallel links. Why does it stay Idle, and what config is needed?",
      "eBGP sends packets with TTL 1 and by default expects the peer to be directly connected, so a session to a loopback address is never attempted. Add a route to the peer's loopback, source the session from your loopback and allow a TTL of 2 (or disable the connected check):\n\nip route 192.0.2.201 255.255.255.255 198.51.100.1\nip route 192.0.2.201 255.255.255.255 198.51.100.5\nrouter bgp 64500\n neighbor 192.0.2.201 remote-as 64501\n neighbor 192.0.2.201 update-source Loopback0\n neighbor 192.0.2.201 ebgp-multihop 2\n\nThe two static routes give per-flow load sharing over both links.",
      "router bgp 64500\n neighbor 192.0.2.201 remote-as 64501\nR1# show ip bgp summary | include 192.0.2.201\n192.0.2.201     4 64501       0       0        1    0    0 never    Idle"),
    B("What does this FRR log entry tell me?",
      "The peer sent a Cease NOTIFICATION (code 6) with subcode 2, Administrative Shutdown: someone on the remote side deliberately shut the session down (e.g. 'neighbor 203.0.113.5 shutdown' or maintenance). Nothing is broken on our side. Contact the peer's NOC or wait for the maintenance to end; the session will come back when they re-enable it.",
      "2024/03/04 22:10:15 BGP: %NOTIFICATION: received from neighbor 203.0.113.5 6/2 (Cease/Administrative Shutdown) 0 bytes\n2024/03/04 22:10:15 BGP: %ADJCHANGE: neighbor 203.0.113.5 in vrf default Down BGP Notification received"),
    B("Our upstream keeps resetting the session. What do these Junos logs mean?",
      "The upstream sent Cease, subcode 1: Maximum Number of Prefixes Reached. We are advertising more prefixes than their prefix limit for us, which usually means we are leaking routes, for example full tables learned from another provider. Check what we export ('show route advertising-protocol bgp 192.0.2.33') and tighten the export policy so only our own and our customers' prefixes go out; if the growth is legitimate, ask the upstream to raise the limit.",
      "rpd[2310]: bgp_read_message: NOTIFICATION received from 192.0.2.33 (External AS 64499): code 6 (Cease) subcode 1 (Maximum Number of Prefixes Reached)\nrpd[2310]: bgp_event: peer 192.0.2.33 (External AS 64499) old state Established event RecvNotify new state Idle"),
    B("Write a Cisco IOS configuration for an eBGP session to a provider that advertises only our /24.",
      "router bgp 64500\n bgp log-neighbor-changes\n neighbor 198.51.100.1 remote-as 64511\n neighbor 198.51.100.1 description Upstream-A\n address-family ipv4 unicast\n  network 203.0.113.0 mask 255.255.255.0\n  neighbor 198.51.100.1 activate\n  neighbor 198.51.100.1 prefix-list OUR-PREFIXES out\n exit-address-family\n!\nip prefix-list OUR-PREFIXES seq 10 permit 203.0.113.0/24\nip route 203.0.113.0 255.255.255.0 Null0\n\nThe network statement only advertises a prefix that exists in the routing table exactly, hence the Null0 route; the outbound prefix-list makes sure nothing else leaks."),
    B("Give an FRR config that prefers the upstream at 198.51.100.1 over the one at 192.0.2.1 for outbound traffic.",
      "route-map FROM-PRIMARY permit 10\n set local-preference 200\n!\nroute-map FROM-BACKUP permit 10\n set local-preference 100\n!\nrouter bgp 64500\n neighbor 198.51.100.1 remote-as 64511\n neighbor 192.0.2.1 remote-as 64509\n address-family ipv4 unicast\n  neighbor 198.51.100.1 route-map FROM-PRIMARY in\n  neighbor 192.0.2.1 route-map FROM-BACKUP in\n exit-address-family\n\nHigher LOCAL_PREF wins, so every router in AS 64500 sends traffic via the primary while its routes exist. Add outbound route-maps too, because FRR's default 'bgp ebgp-requires-policy' blocks eBGP routes without a policy."),
    B("How do I make inbound traffic prefer my primary link, using AS-path prepending on the backup? Show Cisco IOS config.",
      "route-map PREPEND-BACKUP permit 10\n set as-path prepend 64500 64500 64500\n!\nrouter bgp 64500\n address-family ipv4 unicast\n  neighbor 192.0.2.1 route-map PREPEND-BACKUP out\n exit-address-family\n\nRoutes announced to the backup provider carry a longer AS_PATH (64500 64500 64500 64500), so the rest of the Internet usually prefers the path via the primary. Prepending is a hint, not a guarantee: providers that set LOCAL_PREF on their customers' routes ignore path length, so also check for provider communities that lower preference."),
    B("Write a Junos configuration for an eBGP peering that exports only our aggregate.",
      "policy-options {\n    policy-statement EXPORT-OURS {\n        term ours {\n            from {\n                protocol aggregate;\n                route-filter 203.0.113.0/24 exact;\n            }\n            then accept;\n        }\n        term rest {\n            then reject;\n        }\n    }\n}\nrouting-options {\n    aggregate {\n        route 203.0.113.0/24;\n    }\n    autonomous-system 64500;\n}\nprotocols {\n    bgp {\n        group UPSTREAM {\n            type external;\n            peer-as 64511;\n            export EXPORT-OURS;\n            neighbor 198.51.100.1;\n        }\n    }\n}\n\nWithout an export policy Junos would advertise every active BGP route (a transit leak if you have two upstreams) and not the aggregate; this policy exports only the aggregate and the final reject term stops everything else."),
    B("Configure FRR as an iBGP route reflector for two clients.",
      "router bgp 64500\n bgp router-id 192.0.2.250\n bgp cluster-id 192.0.2.250\n neighbor 192.0.2.11 remote-as 64500\n neighbor 192.0.2.11 update-source lo\n neighbor 192.0.2.12 remote-as 64500\n neighbor 192.0.2.12 update-source lo\n address-family ipv4 unicast\n  neighbor 192.0.2.11 route-reflector-client\n  neighbor 192.0.2.12 route-reflector-client\n exit-address-family\n\nA route reflector re-advertises iBGP routes between its clients, so they don't need a full mesh. It adds ORIGINATOR_ID and CLUSTER_LIST to prevent loops; the clients themselves need only a normal iBGP session to the reflector."),
    B("My network statement isn't advertising anything. Why?",
      "In Cisco IOS the network statement advertises a prefix only if an exact match (same prefix and mask) is in the routing table. Here the RIB has 198.51.100.0/25 and 198.51.100.128/25 but no /24, so nothing is announced. Either add 'ip route 198.51.100.0 255.255.255.0 Null0' so the /24 exists, or use 'aggregate-address 198.51.100.0 255.255.255.0 summary-only', which creates it from the more specific BGP routes.",
      "router bgp 64500\n network 198.51.100.0 mask 255.255.255.0\nR1# show ip route 198.51.100.0 255.255.255.0 longer-prefixes\nC    198.51.100.0/25 is directly connected, Vlan10\nC    198.51.100.128/25 is directly connected, Vlan20"),
    B("Why are no prefixes exchanged on this established FRR session?",
      "The session is up, but '(Policy)' in the PfxRcd and PfxSnt columns means FRR's 'bgp ebgp-requires-policy' (on by default in current FRR releases, following RFC 8212) is dropping everything: eBGP peers need an explicit inbound and outbound policy. Attach route-maps, e.g. 'neighbor 203.0.113.9 route-map IMPORT in' and 'neighbor 203.0.113.9 route-map EXPORT out', or, only in a lab, disable the check with 'no bgp ebgp-requires-policy'.",
      "R1# show bgp ipv4 unicast summary\nNeighbor        V         AS   MsgRcvd   MsgSent   TblVer  InQ OutQ  Up/Down State/PfxRcd   PfxSnt Desc\n203.0.113.9     4      64502        15        14        0    0    0 00:11:02     (Policy) (Policy) N/A"),
    B("How do I use BFD to detect BGP peer failures faster? Show an FRR example.",
      "BGP's own failure detection relies on the hold timer (default 180 s on Cisco IOS and with FRR's traditional defaults, 90 s on Junos), which is slow. BFD runs light hello packets every few hundred milliseconds and tells BGP as soon as the path fails:\n\nbfd\n profile fast\n  transmit-interval 300\n  receive-interval 300\n  detect-multiplier 3\n!\nrouter bgp 64500\n neighbor 198.51.100.1 remote-as 64511\n neighbor 198.51.100.1 bfd profile fast\n\nWith 300 ms and a multiplier of 3 a failure is detected in about 0.9 s. The peer must run BFD too, or the session won't be affected."),
    B("What is RPKI route origin validation and what do Valid, Invalid and NotFound mean?",
      "RPKI route origin validation checks whether the AS originating a prefix (the last ASN in AS_PATH) is authorised by a signed ROA. Valid: a ROA covers the prefix, the origin AS matches and the prefix length is within maxLength. Invalid: a ROA covers the prefix but the origin AS or the length does not match, which is typical of hijacks or mis-originations, and such routes are commonly dropped. NotFound: no ROA covers the prefix, so it is usually accepted. The router fetches validated ROA payloads from a validator over the RTR protocol."),
]


# =====================================================================================

def build():
    """Every dataset, in memory: {relative path: [rows]}, plus CAMARA metadata for the checks."""
    rng = random.Random(SEED)
    sft, ev, pref = build_camara(rng)
    og_eval = [{"prompt": p, "must_contain": mc, "must_not_contain": mn} for p, mc, mn in OG_EVAL]
    files = {
        "camara_qod/sft.jsonl": [r for r, _ in sft],
        "camara_qod/eval.jsonl": [r for r, _ in ev],
        "camara_qod/preference.jsonl": [r for r, _ in pref],
        "oilgas/sft.jsonl": list(OG_SFT),
        "oilgas/preference.jsonl": list(OG_PREF),
        "oilgas/eval.jsonl": og_eval,
        "edu/sft.jsonl": list(EDU),
        "bgp/sft.jsonl": list(BGP),
    }
    meta = {
        "camara_qod/sft.jsonl": [m for _, m in sft],
        "camara_qod/eval.jsonl": [m for _, m in ev],
        "camara_qod/preference.jsonl": [m for _, m in pref],
    }
    return files, meta


def dump_jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main():
    files, _ = build()
    for rel, rows in files.items():
        path = os.path.join(HERE, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(dump_jsonl(rows))
        print("%-30s %4d rows" % (rel, len(rows)))


if __name__ == "__main__":
    main()
