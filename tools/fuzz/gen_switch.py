#!/usr/bin/env python3
"""gen_switch.py: random switch rules (every operator with every value type, checkall).

Writes a FLOWTEST suite without expectations, for flowtest-record to fill in on
Node-RED (see README.md here):  gen_switch.py SEED COUNT OUT.json
"""
import json, random, sys
random.seed(int(sys.argv[1])); N=int(sys.argv[2])
PAY=[0,1,-1,2.5,"1","",
     " ","abc","ABC","10","9","1e3","0x10",True,False,None,[],[1],[1,2],["a"],{},{"a":1},{"$buffer":"0102"},{"$buffer":""},"[1,2]","{\"a\":1}","true","null"," 1 ","a.c","Abc"]
VALS=["1","","abc","a.c","^a","10","9","true","null","[1]","x","0","a","1e3"," ","2.5","A"]
OPS=["eq","neq","lt","lte","gt","gte","btwn","cont","regex","true","false","null","nnull","istype","empty","nempty","hask","jsonata_exp","else"]
TYPES=["string","number","boolean","array","buffer","object","json","null","undefined"]
def rule():
    t=random.choice(OPS); r={"t":t}
    if t in ("eq","neq","lt","lte","gt","gte","cont","hask"):
        r["v"]=random.choice(VALS); r["vt"]=random.choice(["str","num","str","bool","msg","flow","global","env","jsonata"])
        if r["vt"]=="bool": r["v"]=random.choice(["true","false"])
        if r["vt"]=="msg": r["v"]=random.choice(["topic","other","payload"])
        if r["vt"] in("flow","global"): r["v"]=random.choice(["k","missing"])
        if r["vt"]=="env": r["v"]="EV"
        if r["vt"]=="jsonata": r["v"]=random.choice(["payload","1+1","'1'","$string(payload)"])
    elif t=="btwn":
        r["v"]=random.choice(VALS); r["vt"]=random.choice(["num","str"]); r["v2"]=random.choice(VALS); r["v2t"]=random.choice(["num","str"])
    elif t=="regex":
        r["v"]=random.choice(["^a","b","A","\\d","^$","[","c$",".","1"]); r["vt"]="str"; r["case"]=random.choice([True,False])
    elif t=="istype":
        r["v"]=random.choice(TYPES); r["vt"]=r["v"]
    elif t=="jsonata_exp":
        r["v"]=random.choice(["payload > 1","$type(payload)='string'","payload","$count(payload)>1","nothing"]); r["vt"]="jsonata"
    return r
cases=[]
for i in range(N):
    rules=[rule() for _ in range(random.randint(1,3))]
    outs=len(rules)
    sw={"id":"s1","type":"switch","name":"","property":random.choice(["payload","payload","payload.a","topic"]),"propertyType":"msg",
        "rules":rules,"checkall":random.choice(["true","false"]),"repair":False,"outputs":outs,"wires":[["h%d"%k] for k in range(outs)]}
    flow=[sw]+[{"id":"h%d"%k,"type":"helper","wires":[]} for k in range(outs)]
    steps=[]
    for j in range(5):
        m={"payload":random.choice(PAY),"topic":random.choice(["1","abc","t",""]),"n":j}
        steps.append({"send":{"node":"s1","msg":m}}); steps.append({"wait":5})
    cases.append({"name":"switch fuzz %d"%i,"flow":flow,"env":{"EV":random.choice(["1","abc",""])},
                  "context":{"flow":{"k":random.choice([1,"1","abc",True,[1]])},"global":{"k":random.choice([0,"10","a"])}},"steps":steps})
json.dump({"suite":"switch-fuzz","cases":cases},open(sys.argv[3],"w"),indent=1)
