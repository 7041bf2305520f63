#!/usr/bin/env python3
"""gen_switch_seq.py: random switch sequence rules (head, tail, index, repair) over messages with msg.parts.

Writes a FLOWTEST suite without expectations, for flowtest-record to fill in on
Node-RED (see README.md here):  gen_switch_seq.py SEED COUNT OUT.json
"""
import json, random, sys
random.seed(int(sys.argv[1])); N=int(sys.argv[2])
def rule():
    t=random.choice(["head","tail","index","eq","else","gt","nempty"])
    r={"t":t}
    if t in("head","tail"): r["v"]=random.choice(["1","2","0","-1","abc","3"]); r["vt"]=random.choice(["num","num","str","msg"]);
    if t=="index": r["v"]=random.choice(["0","1","2"]); r["vt"]="num"; r["v2"]=random.choice(["1","2","3"]); r["v2t"]="num"
    if t=="eq": r["v"]=random.choice(["1","2","a"]); r["vt"]=random.choice(["num","str"])
    if t=="gt": r["v"]=random.choice(["1","2"]); r["vt"]="num"
    if r.get("vt")=="msg": r["v"]=random.choice(["n","topic"])
    return r
cases=[]
for i in range(N):
    rules=[rule() for _ in range(random.randint(1,3))]
    outs=len(rules)
    sw={"id":"s1","type":"switch","name":"","property":"payload","propertyType":"msg","rules":rules,"checkall":random.choice(["true","false"]),
        "repair":random.choice([True,False,True]),"outputs":outs,"wires":[["h%d"%k] for k in range(outs)]}
    flow=[sw]+[{"id":"h%d"%k,"type":"helper","wires":[]} for k in range(outs)]
    steps=[]; cnt=random.randint(2,5)
    for g in range(random.randint(1,2)):
        for j in range(cnt):
            m={"payload":random.choice([1,2,"a",3,0,"",None]),"topic":random.choice(["t","1"]),"n":j,"parts":{"id":"G%d"%g,"index":j,"count":cnt,"type":"array","len":1}}
            if random.random()<0.1: del m["parts"]
            steps.append({"send":{"node":"s1","msg":m}}); steps.append({"wait":5})
    cases.append({"name":"switch seq %d"%i,"flow":flow,"steps":steps})
json.dump({"suite":"switch-seq-fuzz","cases":cases},open(sys.argv[3],"w"),indent=1)
